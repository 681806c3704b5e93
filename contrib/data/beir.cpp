/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include "contrib/data/beir.h"

#include <charconv>
#include <stdexcept>

#include "contrib/data/file_util.h"
#include "contrib/data/json.h"

namespace faiss_ehi {
namespace data {

namespace {

/// Call f(line, line_number) for each non-blank line (1-based numbers).
template <typename F>
void for_each_line(const std::string& text, F&& f) {
    size_t pos = 0, lineno = 0;
    while (pos < text.size()) {
        size_t e = text.find('\n', pos);
        if (e == std::string::npos) {
            e = text.size();
        }
        lineno++;
        size_t end = e;
        if (end > pos && text[end - 1] == '\r') {
            end--;
        }
        std::string line = text.substr(pos, end - pos);
        if (line.find_first_not_of(" \t") != std::string::npos) {
            f(line, lineno);
        }
        pos = e + 1;
    }
}

std::string read_existing(const std::string& path, const char* what) {
    if (!file_exists(path)) {
        throw std::runtime_error(std::string("BEIR ") + what +
                                 " file not found: " + path);
    }
    return read_file(path);
}

std::string where(const std::string& path, size_t lineno) {
    return path + " line " + std::to_string(lineno);
}

/// Required string member `key` of a parsed line.
std::string get_field(const std::unordered_map<std::string, std::string>& m,
                      const std::string& key, const std::string& at,
                      bool required) {
    auto it = m.find(key);
    if (it == m.end()) {
        if (required) {
            throw std::runtime_error("missing \"" + key + "\" in " + at);
        }
        return "";
    }
    return it->second;
}

} // namespace

idx_t BeirCorpus::find(const std::string& id) const {
    auto it = index.find(id);
    return it == index.end() ? -1 : it->second;
}

std::string BeirCorpus::full_text(idx_t i) const {
    const std::string& t = titles[size_t(i)];
    return t.empty() ? texts[size_t(i)] : t + " " + texts[size_t(i)];
}

idx_t BeirQueries::find(const std::string& id) const {
    auto it = index.find(id);
    return it == index.end() ? -1 : it->second;
}

size_t Qrels::num_pairs() const {
    size_t n = 0;
    for (const auto& kv : judgements) {
        n += kv.second.size();
    }
    return n;
}

size_t Qrels::num_relevant_pairs() const {
    size_t n = 0;
    for (const auto& kv : judgements) {
        for (const auto& p : kv.second) {
            n += p.second > 0;
        }
    }
    return n;
}

BeirCorpus read_beir_corpus(const std::string& path) {
    std::string text = read_existing(path, "corpus");
    BeirCorpus c;
    for_each_line(text, [&](const std::string& line, size_t lineno) {
        std::string at = where(path, lineno);
        auto m = parse_flat_object(line, at);
        std::string id = get_field(m, "_id", at, true);
        if (!c.index.emplace(id, idx_t(c.ids.size())).second) {
            throw std::runtime_error("duplicate _id \"" + id + "\" in " + at);
        }
        c.ids.push_back(id);
        c.titles.push_back(get_field(m, "title", at, false));
        c.texts.push_back(get_field(m, "text", at, true));
    });
    return c;
}

BeirQueries read_beir_queries(const std::string& path) {
    std::string text = read_existing(path, "queries");
    BeirQueries q;
    for_each_line(text, [&](const std::string& line, size_t lineno) {
        std::string at = where(path, lineno);
        auto m = parse_flat_object(line, at);
        std::string id = get_field(m, "_id", at, true);
        if (!q.index.emplace(id, idx_t(q.ids.size())).second) {
            throw std::runtime_error("duplicate _id \"" + id + "\" in " + at);
        }
        q.ids.push_back(id);
        q.texts.push_back(get_field(m, "text", at, true));
    });
    return q;
}

Qrels read_beir_qrels(const std::string& path) {
    std::string text = read_existing(path, "qrels");
    Qrels qr;
    bool first = true;
    for_each_line(text, [&](const std::string& line, size_t lineno) {
        std::vector<std::string> f;
        size_t p = 0;
        while (true) {
            size_t t = line.find('\t', p);
            f.push_back(line.substr(p, t == std::string::npos ? t : t - p));
            if (t == std::string::npos) {
                break;
            }
            p = t + 1;
        }
        if (first) {
            first = false;
            if (f.size() >= 1 && f[0] == "query-id") {
                return; // header
            }
        }
        if (f.size() != 3) {
            throw std::runtime_error(
                    "expected 3 tab-separated fields (query-id corpus-id "
                    "score) in " +
                    where(path, lineno) + ", found " +
                    std::to_string(f.size()));
        }
        int score = 0;
        const std::string& s = f[2];
        auto r = std::from_chars(s.data(), s.data() + s.size(), score);
        if (r.ec != std::errc() || r.ptr != s.data() + s.size()) {
            throw std::runtime_error("bad score \"" + s + "\" in " +
                                     where(path, lineno));
        }
        if (f[0].empty() || f[1].empty()) {
            throw std::runtime_error("empty id in " + where(path, lineno));
        }
        auto it = qr.judgements.find(f[0]);
        if (it == qr.judgements.end()) {
            qr.query_ids.push_back(f[0]);
            it = qr.judgements.emplace(f[0], decltype(it->second)()).first;
        }
        bool replaced = false;
        for (auto& pr : it->second) {
            if (pr.first == f[1]) {
                pr.second = score;
                replaced = true;
            }
        }
        if (!replaced) {
            it->second.emplace_back(f[1], score);
        }
    });
    return qr;
}

BeirData load_beir(const std::string& dir, const std::string& split) {
    if (!dir_exists(dir)) {
        throw std::runtime_error("BEIR directory not found: " + dir);
    }
    BeirData b;
    b.dir = dir;
    b.split = split;
    b.corpus = read_beir_corpus(dir + "/corpus.jsonl");
    b.queries = read_beir_queries(dir + "/queries.jsonl");
    b.qrels = read_beir_qrels(dir + "/qrels/" + split + ".tsv");
    return b;
}

BeirEvalSet make_eval_set(const BeirCorpus& corpus, const BeirQueries& queries,
                          const Qrels& qrels) {
    BeirEvalSet ev;
    for (const std::string& qid : qrels.query_ids) {
        idx_t qrow = queries.find(qid);
        if (qrow < 0) {
            throw std::runtime_error("qrels query id \"" + qid +
                                     "\" is not in the queries");
        }
        std::vector<std::pair<idx_t, int>> rel;
        for (const auto& pr : qrels.judgements.at(qid)) {
            idx_t drow = corpus.find(pr.first);
            if (drow < 0) {
                ev.unknown_docs++;
                continue;
            }
            if (pr.second > 0) {
                rel.emplace_back(drow, pr.second);
            }
        }
        if (!rel.empty()) {
            ev.query_rows.push_back(qrow);
            ev.relevant.push_back(std::move(rel));
        }
    }
    return ev;
}

Vocabulary build_corpus_vocabulary(const BeirCorpus& corpus, int64_t min_count,
                                   int max_size) {
    std::vector<std::string> texts;
    texts.reserve(corpus.ids.size());
    for (idx_t i = 0; i < corpus.size(); i++) {
        texts.push_back(corpus.full_text(i));
    }
    return build_vocabulary(texts, min_count, max_size);
}

} // namespace data
} // namespace faiss_ehi
