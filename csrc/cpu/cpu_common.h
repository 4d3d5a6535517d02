// What the CPU kernels of torch.ops.dau share: the arithmetic type of each
// storage type and a dispatch over the floating-point dtypes.
//
// Header-only, torch stable ABI headers only.

#pragma once

#include "../op_common.h"

#include <torch/headeronly/core/ScalarType.h>
#include <torch/headeronly/util/BFloat16.h>
#include <torch/headeronly/util/Exception.h>
#include <torch/headeronly/util/Half.h>

namespace dau::ops::cpu {

// Float16 and bfloat16 are computed in float32 and rounded once when stored.
template <typename T>
struct OpMath {
  using type = T;
};
template <>
struct OpMath<torch::headeronly::Half> {
  using type = float;
};
template <>
struct OpMath<torch::headeronly::BFloat16> {
  using type = float;
};

using dau::ops::TypeTag;

// Calls f(TypeTag<T>{}) with T the C++ type of `dtype` (float, double, Half
// or BFloat16 of torch::headeronly); any other dtype is an error naming `op`.
template <typename F>
void dispatch_float(torch::headeronly::ScalarType dtype, const char* op, const F& f) {
  using torch::headeronly::BFloat16;
  using torch::headeronly::Half;
  dispatch_float_types<float, double, Half, BFloat16>(dtype, op, f);
}

} // namespace dau::ops::cpu
