/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * Tensor shapes as text, for the trainer's error messages (internal).
 */
#pragma once

#include <sstream>
#include <string>

#include <torch/torch.h>

namespace faiss_ehi {
namespace trainer {

/// "[n, d]", or "undefined".
inline std::string shape_text(const torch::Tensor& t) {
    if (!t.defined()) {
        return "undefined";
    }
    std::ostringstream s;
    s << t.sizes();
    return s.str();
}

} // namespace trainer
} // namespace faiss_ehi
