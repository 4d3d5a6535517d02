// What the CPU and CUDA kernels of torch.ops.dau.sensitivity_features (and
// its backward) share: the argument checks, with the messages of
// dau/ops/reference.py:check_sensitivity_features_arguments.
//
// Header-only, torch stable ABI headers only; compiled by both the C++
// compiler and nvcc.

#pragma once

#include "op_common.h"

#include <torch/csrc/stable/tensor.h>
#include <torch/headeronly/core/ScalarType.h>
#include <torch/headeronly/util/Exception.h>

#include <cmath>
#include <cstdint>

namespace dau::ops::sensitivity_features {

constexpr const char* kOp = "sensitivity_features";

// The shape, dtype and device checks of logits [B, C] and noisy_logits
// [m * B, C]; returns m.
inline int64_t check_logits(
    const char* op,
    const torch::stable::Tensor& logits,
    const torch::stable::Tensor& noisy_logits,
    double sigma) {
  check_float_operand(op, "logits", logits);
  STD_TORCH_CHECK(
      logits.dim() == 2, op, ": logits must be 2-D [B, C], got shape ", shape_string(logits));
  const int64_t batch = logits.size(0);
  const int64_t classes = logits.size(1);
  STD_TORCH_CHECK(noisy_logits.defined(), op, ": noisy_logits is undefined");
  STD_TORCH_CHECK(
      noisy_logits.layout() == torch::headeronly::Layout::Strided,
      op, ": noisy_logits must be a strided (dense) tensor");
  STD_TORCH_CHECK(
      noisy_logits.dim() == 2 && noisy_logits.size(1) == classes,
      op, ": noisy_logits must be [m * B, C] = [m * ", batch, ", ", classes, "], got shape ",
      shape_string(noisy_logits));
  STD_TORCH_CHECK(
      noisy_logits.scalar_type() == logits.scalar_type(),
      op, ": noisy_logits has dtype ", dtype_string(noisy_logits.scalar_type()),
      " but logits has ", dtype_string(logits.scalar_type()));
  check_same_device(op, "noisy_logits", noisy_logits, "logits", logits);
  STD_TORCH_CHECK(
      std::isfinite(sigma) && sigma > 0.0, op, ": sigma must be finite and > 0, got ", sigma);
  STD_TORCH_CHECK(batch > 0, op, ": the batch is empty (B = 0)");
  const int64_t rows = noisy_logits.size(0);
  STD_TORCH_CHECK(
      rows > 0 && rows % batch == 0,
      op, ": noisy_logits has ", rows, " rows, not a positive multiple of the batch size ",
      batch, " (m noisy copies of each row, copy-major)");
  return rows / batch;
}

// Every check of sensitivity_features' arguments but the range of the labels
// (which needs their values); returns m.
inline int64_t check_arguments(
    const torch::stable::Tensor& logits,
    const torch::stable::Tensor& noisy_logits,
    const torch::stable::Tensor& labels,
    double sigma,
    int64_t num_classes) {
  const int64_t m = check_logits(kOp, logits, noisy_logits, sigma);
  STD_TORCH_CHECK(labels.defined(), kOp, ": labels is undefined");
  STD_TORCH_CHECK(
      labels.layout() == torch::headeronly::Layout::Strided,
      kOp, ": labels must be a strided (dense) tensor");
  STD_TORCH_CHECK(
      labels.dim() == 1 && labels.size(0) == logits.size(0),
      kOp, ": labels must be 1-D [B] = [", logits.size(0), "], got shape ",
      shape_string(labels));
  STD_TORCH_CHECK(
      labels.scalar_type() == torch::headeronly::ScalarType::Long,
      kOp, ": labels has dtype ", dtype_string(labels.scalar_type()), "; it must be int64");
  check_same_device(kOp, "labels", labels, "logits", logits);
  STD_TORCH_CHECK(
      num_classes == logits.size(1),
      kOp, ": num_classes is ", num_classes, " but logits has ", logits.size(1), " columns");
  return m;
}

// The checks of sensitivity_features_backward; returns m.
inline int64_t check_backward_arguments(
    const torch::stable::Tensor& grad,
    const torch::stable::Tensor& logits,
    const torch::stable::Tensor& noisy_logits,
    double sigma) {
  constexpr const char* op = "sensitivity_features_backward";
  const int64_t m = check_logits(op, logits, noisy_logits, sigma);
  check_float_operand(op, "grad", grad);
  STD_TORCH_CHECK(
      grad.dim() == 2 && grad.size(0) == logits.size(0) && grad.size(1) == 3 * logits.size(1),
      op, ": grad must be [B, 3C] = [", logits.size(0), ", ", 3 * logits.size(1),
      "], got shape ", shape_string(grad));
  STD_TORCH_CHECK(
      grad.scalar_type() == logits.scalar_type(),
      op, ": grad has dtype ", dtype_string(grad.scalar_type()), " but logits has ",
      dtype_string(logits.scalar_type()));
  check_same_device(op, "grad", grad, "logits", logits);
  return m;
}

} // namespace dau::ops::sensitivity_features
