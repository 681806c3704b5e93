/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include <faiss_ehi/faiss_ehi.h>

namespace faiss_ehi {
const char* version() {
    return "0.1.0";
}
} // namespace faiss_ehi
