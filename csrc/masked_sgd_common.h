// What the CPU and CUDA kernels of torch.ops.dau.masked_sgd_ share: the
// argument checks (with their error messages) and the layout helpers that
// decide whether operands can be used in place.
//
// Header-only, torch stable ABI headers only; compiled by both the C++
// compiler (cpu/masked_sgd.cpp) and nvcc (cuda/masked_sgd.cu).

#pragma once

#include "op_common.h"

#include <torch/csrc/stable/tensor.h>
#include <torch/headeronly/core/ScalarType.h>
#include <torch/headeronly/util/Exception.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

namespace dau::ops::masked_sgd {

using torch::headeronly::ScalarType;
using torch::stable::Tensor;

using dau::ops::device_string;
using dau::ops::shape_string;

inline bool same_shape(const Tensor& a, const Tensor& b) {
  if (a.dim() != b.dim()) {
    return false;
  }
  for (int64_t d = 0; d < a.dim(); ++d) {
    if (a.size(d) != b.size(d)) {
      return false;
    }
  }
  return true;
}

inline bool same_strides(const Tensor& a, const Tensor& b) {
  for (int64_t d = 0; d < a.dim(); ++d) {
    if (a.size(d) != 1 && a.stride(d) != b.stride(d)) {
      return false;
    }
  }
  return true;
}

// Dense: the elements fill exactly numel() consecutive slots from data_ptr(),
// in some order of the dims, with no gaps and no two elements sharing a slot.
inline bool is_non_overlapping_and_dense(const Tensor& t) {
  const int64_t ndim = t.dim();
  std::vector<int64_t> dims(static_cast<size_t>(ndim));
  std::iota(dims.begin(), dims.end(), int64_t{0});
  std::sort(dims.begin(), dims.end(), [&](int64_t a, int64_t b) {
    return t.stride(a) < t.stride(b);
  });
  int64_t expected = 1;
  for (const int64_t d : dims) {
    const int64_t size = t.size(d);
    if (size == 1) {
      continue;
    }
    if (t.stride(d) != expected) {
      return false;
    }
    expected *= size;
  }
  return true;
}

// A param or buffer that is written must not have two elements in one slot.
inline bool has_internal_overlap(const Tensor& t) {
  for (int64_t d = 0; d < t.dim(); ++d) {
    if (t.size(d) > 1 && t.stride(d) == 0) {
      return true;
    }
  }
  return false;
}

// Whether a param and its grad, buffer and mask (each null when absent) share
// one dense layout, so that offset k of each pointer is the same logical
// element and the kernel can work on them in place.
inline bool shares_dense_layout(
    const Tensor& param,
    const Tensor& grad,
    const Tensor* buffer,
    const Tensor* mask) {
  bool direct = is_non_overlapping_and_dense(param) && same_strides(param, grad);
  if (buffer != nullptr) {
    direct = direct && same_strides(param, *buffer);
  }
  if (mask != nullptr) {
    direct = direct && same_strides(param, *mask);
  }
  return direct;
}

// Every check of masked_sgd_'s arguments. `check_param_device(params, i)` is
// the backend's own device check of params[i], run right after its layout
// check; the other operands of entry i must then be on the device of params[i].
template <typename ParamDeviceCheck>
void check_arguments(
    const std::vector<Tensor>& params,
    const std::vector<Tensor>& grads,
    const std::vector<Tensor>& buffers,
    const std::vector<std::optional<Tensor>>& masks,
    double momentum,
    double dampening,
    bool nesterov,
    const ParamDeviceCheck& check_param_device) {
  const size_t n = params.size();
  STD_TORCH_CHECK(
      grads.size() == n,
      "masked_sgd_: got ", grads.size(), " grads for ", n, " params; pass one grad per param");
  if (momentum != 0.0) {
    STD_TORCH_CHECK(
        buffers.size() == n,
        "masked_sgd_: momentum is ", momentum, " so one momentum buffer per param is needed, got ",
        buffers.size(), " buffers for ", n, " params");
  } else {
    STD_TORCH_CHECK(
        buffers.empty() || buffers.size() == n,
        "masked_sgd_: got ", buffers.size(), " momentum buffers for ", n,
        " params; pass none or one per param");
  }
  STD_TORCH_CHECK(
      masks.empty() || masks.size() == n,
      "masked_sgd_: got ", masks.size(), " masks for ", n,
      " params; pass none (all dense) or one per param (None = dense)");
  STD_TORCH_CHECK(
      !nesterov || (momentum > 0.0 && dampening == 0.0),
      "masked_sgd_: Nesterov momentum requires momentum > 0 and dampening == 0, got momentum=",
      momentum, " dampening=", dampening);

  const bool use_buffers = momentum != 0.0;
  for (size_t i = 0; i < n; ++i) {
    const Tensor& p = params[i];
    STD_TORCH_CHECK(p.defined(), "masked_sgd_: params[", i, "] is undefined");
    STD_TORCH_CHECK(
        p.layout() == torch::headeronly::Layout::Strided,
        "masked_sgd_: params[", i, "] must be a strided (dense) tensor");
    check_param_device(params, i);
    const ScalarType dtype = p.scalar_type();
    STD_TORCH_CHECK(
        is_float_dtype(dtype),
        "masked_sgd_: params[", i, "] has dtype ", torch::headeronly::toString(dtype),
        "; supported are float32, float64, float16 and bfloat16");
    STD_TORCH_CHECK(
        !has_internal_overlap(p),
        "masked_sgd_: params[", i, "] has several elements in one memory location "
        "(an expanded view); it cannot be updated in place");

    auto check_like = [&](const Tensor& t, const char* name, bool same_dtype) {
      STD_TORCH_CHECK(t.defined(), "masked_sgd_: ", name, "[", i, "] is undefined");
      STD_TORCH_CHECK(
          t.layout() == torch::headeronly::Layout::Strided,
          "masked_sgd_: ", name, "[", i, "] must be a strided (dense) tensor");
      STD_TORCH_CHECK(
          same_shape(p, t),
          "masked_sgd_: ", name, "[", i, "] has shape ", shape_string(t), " but params[", i,
          "] has shape ", shape_string(p));
      STD_TORCH_CHECK(
          same_device(t, p),
          "masked_sgd_: ", name, "[", i, "] is on ", device_string(t), " but params[", i,
          "] is on ", device_string(p));
      if (same_dtype) {
        STD_TORCH_CHECK(
            t.scalar_type() == dtype,
            "masked_sgd_: ", name, "[", i, "] has dtype ",
            torch::headeronly::toString(t.scalar_type()), " but params[", i, "] has dtype ",
            torch::headeronly::toString(dtype));
      }
    };
    check_like(grads[i], "grads", true);
    if (use_buffers) {
      check_like(buffers[i], "momentum_buffers", true);
      STD_TORCH_CHECK(
          !has_internal_overlap(buffers[i]),
          "masked_sgd_: momentum_buffers[", i, "] has several elements in one memory "
          "location (an expanded view); it cannot be updated in place");
    }
    if (!masks.empty() && masks[i].has_value()) {
      const Tensor& m = *masks[i];
      check_like(m, "masks", false);
      const ScalarType mdtype = m.scalar_type();
      STD_TORCH_CHECK(
          mdtype == ScalarType::Bool || mdtype == ScalarType::Byte || mdtype == dtype,
          "masked_sgd_: masks[", i, "] has dtype ", torch::headeronly::toString(mdtype),
          "; a mask must be bool, uint8 or the dtype of its param (",
          torch::headeronly::toString(dtype), ")");
    }
  }
}

} // namespace dau::ops::masked_sgd
