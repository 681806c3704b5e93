/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include <faiss_ehi/enum_names.h>

#include <faiss/impl/FaissAssert.h>

namespace faiss_ehi {

const std::vector<std::pair<NodeForm, const char*>>&
EnumNames<NodeForm>::all() {
    static const std::vector<std::pair<NodeForm, const char*>> names = {
            {NodeForm::PAPER, "paper"}, {NodeForm::PER_NODE, "node"}};
    return names;
}

const std::vector<std::pair<DocAssignRule, const char*>>&
EnumNames<DocAssignRule>::all() {
    static const std::vector<std::pair<DocAssignRule, const char*>> names = {
            {DocAssignRule::PROBABILITY, "probability"},
            {DocAssignRule::NEAREST_LEAF, "nearest"},
            {DocAssignRule::SOAR, "soar"}};
    return names;
}

const std::vector<std::pair<BeamStrategy, const char*>>&
EnumNames<BeamStrategy>::all() {
    static const std::vector<std::pair<BeamStrategy, const char*>> names = {
            {BeamStrategy::BEST_FIRST, "best_first"},
            {BeamStrategy::LEVEL_BEAM, "level_beam"},
            {BeamStrategy::GROUPED, "grouped"}};
    return names;
}

void throw_bad_enum_name(const char* what, const std::string& text,
                         const std::string& choices) {
    FAISS_THROW_FMT("%s = '%s', expected one of %s", what, text.c_str(),
                    choices.c_str());
}

} // namespace faiss_ehi
