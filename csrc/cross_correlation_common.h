// What the CPU and CUDA kernels of torch.ops.dau.cross_correlation_loss (and
// its backward) share: the argument checks and the whole computation but its
// element-wise stages, which each backend supplies (cpu/cross_correlation.cpp,
// cuda/cross_correlation.cu).
//
// With n = min(B_v, B_f) rows, v and f the first n rows standardized per
// column (v = (x - mean) / t, t = unbiased std + eps), K = min(D_v, D_f),
// M = v^T f (so C = M / n) and d_i = M_ii:
//
//   loss = sum_{i<K} (d_i / n - 1)^2 + w (S / n^2 - sum_{i<K} (d_i / n)^2)
//
// where S = sum_ij M_ij^2 = sum_ab G^v_ab G^f_ab with the Gram matrices
// G^v = v v^T and G^f = f f^T. The gradient w.r.t. v is
//
//   dL/dv = (2 g / n) (w A_v / n + [i < K] ((1 - w) d_i / n - 1) f),
//   A_v = f M^T = G^f v          (and symmetrically for f: A_f = v M = G^v f)
//
// followed by the backward of the standardization, per column:
//   dL/dx_b = (dv_b - mean(dv)) / t - v_b sum_b(dv_b v_b) / ((n - 1) s)
// (the second term is 0 for a constant column, s = 0).
//
// The products run through torch's matmul (BLAS / cuBLAS): by M when the
// feature dims are small against the batch, else by the n x n Gram matrices,
// whichever needs fewer multiply-adds. Everything else is one pass of the
// backend's element-wise kernels, in float32 for float16/bfloat16 inputs.
//
// Header-only, torch stable ABI headers only; compiled by both the C++
// compiler and nvcc (host code only).

#pragma once

#include "op_common.h"

#include <torch/csrc/stable/ops.h>
#include <torch/csrc/stable/tensor.h>
#include <torch/headeronly/core/ScalarType.h>
#include <torch/headeronly/util/Exception.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <tuple>
#include <vector>

namespace dau::ops::cross_correlation {

using torch::headeronly::ScalarType;
using torch::stable::Tensor;

constexpr const char* kOp = "cross_correlation_loss";
constexpr const char* kBackwardOp = "cross_correlation_loss_backward";

inline void check_features(const char* op, const Tensor& val, const Tensor& forget) {
  check_float_operand(op, "val_features", val);
  check_float_operand(op, "forget_features", forget);
  STD_TORCH_CHECK(
      val.dim() == 2, op, ": val_features must be 2-D [batch, features], got shape ",
      shape_string(val));
  STD_TORCH_CHECK(
      forget.dim() == 2, op, ": forget_features must be 2-D [batch, features], got shape ",
      shape_string(forget));
  STD_TORCH_CHECK(
      forget.scalar_type() == val.scalar_type(),
      op, ": forget_features has dtype ", dtype_string(forget.scalar_type()),
      " but val_features has ", dtype_string(val.scalar_type()));
  check_same_device(op, "forget_features", forget, "val_features", val);
}

inline void check_arguments(
    const char* op, const Tensor& val, const Tensor& forget, double offdiag_weight, double eps) {
  check_features(op, val, forget);
  STD_TORCH_CHECK(
      std::isfinite(offdiag_weight), op, ": offdiag_weight must be finite, got ",
      offdiag_weight);
  STD_TORCH_CHECK(
      std::isfinite(eps) && eps >= 0.0, op, ": eps must be finite and >= 0, got ", eps);
}

inline void check_grad(const Tensor& grad, const Tensor& val) {
  STD_TORCH_CHECK(grad.defined(), kBackwardOp, ": grad is undefined");
  STD_TORCH_CHECK(
      grad.numel() == 1, kBackwardOp, ": grad must hold one value (the loss is 0-dim), got shape ",
      shape_string(grad));
  check_same_device(kBackwardOp, "grad", grad, "val_features", val);
}

// The arithmetic dtype: float64 stays, everything else is float32.
inline ScalarType compute_dtype(ScalarType dtype) {
  return dtype == ScalarType::Double ? ScalarType::Double : ScalarType::Float;
}

inline int64_t rows_of(const Tensor& val, const Tensor& forget) {
  return std::min(val.size(0), forget.size(0));
}

// Whether the forward pass goes through M (else through the Gram matrices).
inline bool forward_by_m(int64_t n, int64_t dv, int64_t df) {
  return dv * df <= n * (dv + df);
}

// Whether the backward pass goes through M (else through the Gram matrices).
inline bool backward_by_m(int64_t n, int64_t dv, int64_t df) {
  return 3 * dv * df <= 2 * n * (dv + df);
}

inline Tensor t(const Tensor& x) {
  return torch::stable::transpose(x, 0, 1);
}

// The first n rows of x as a contiguous matrix of the compute dtype.
inline Tensor leading_rows(const Tensor& x, int64_t n) {
  Tensor all = x;
  Tensor rows = torch::stable::narrow(all, 0, 0, n);
  const ScalarType dtype = compute_dtype(x.scalar_type());
  if (rows.scalar_type() != dtype) {
    rows = torch::stable::to(rows, dtype);
  }
  return torch::stable::contiguous(rows);
}

// The operations each backend supplies (as static member functions):
//
//   Tensor standardize(const Tensor& x, double eps, Tensor& stats)
//     x: [n, D] contiguous, compute dtype. Returns (x - mean) / t, [n, D]
//     contiguous, and sets stats to [2, D]: 1 / t and 1 / ((n - 1) s) (0 if s = 0).
//   Tensor column_dots(const Tensor& v, const Tensor& f, int64_t k)
//     d_i = sum_b v_bi f_bi for i < k, as a float64 tensor [k].
//   Tensor loss(const Tensor& a, const Tensor& b, const Tensor& d, int64_t n,
//               double w, ScalarType dtype)
//     The 0-dim loss of dtype `dtype`; S = sum(a * a) when b is undefined
//     (a = M), else sum(a * b) (a, b = the Gram matrices).
//   void input_gradient(const Tensor& grad, const Tensor& a, const Tensor& self,
//                       const Tensor& other, const Tensor& stats, const Tensor& d,
//                       int64_t n, double w, Tensor& out)
//     out: [B, D] contiguous of the input dtype; its first n rows get
//     dL/dx (a = A for this input, self / other the standardized inputs),
//     the rest 0.
// The standardized leading rows of both inputs, their statistics and the
// diagonal dots: what the forward and the backward pass both start from.
struct Prepared {
  Tensor v, f, stats_v, stats_f, d;
};

template <typename Backend>
Prepared prepare(const Tensor& val, const Tensor& forget, int64_t n, double eps) {
  Prepared p;
  p.v = Backend::standardize(leading_rows(val, n), eps, p.stats_v);
  p.f = Backend::standardize(leading_rows(forget, n), eps, p.stats_f);
  p.d = Backend::column_dots(p.v, p.f, std::min(p.v.size(1), p.f.size(1)));
  return p;
}

template <typename Backend>
Tensor loss(const Tensor& val, const Tensor& forget, double offdiag_weight, double eps) {
  const int64_t n = rows_of(val, forget);
  if (n < 2) {
    return torch::stable::new_zeros(val, std::vector<int64_t>{});
  }
  const Prepared p = prepare<Backend>(val, forget, n, eps);
  if (forward_by_m(n, p.v.size(1), p.f.size(1))) {
    return Backend::loss(
        torch::stable::matmul(t(p.v), p.f), Tensor(), p.d, n, offdiag_weight, val.scalar_type());
  }
  return Backend::loss(
      torch::stable::matmul(p.v, t(p.v)), torch::stable::matmul(p.f, t(p.f)), p.d, n,
      offdiag_weight, val.scalar_type());
}

template <typename Backend>
std::tuple<Tensor, Tensor> backward(
    const Tensor& grad,
    const Tensor& val,
    const Tensor& forget,
    double offdiag_weight,
    double eps) {
  Tensor grad_val = torch::stable::new_empty(val, {val.size(0), val.size(1)});
  Tensor grad_forget = torch::stable::new_empty(forget, {forget.size(0), forget.size(1)});
  const int64_t n = rows_of(val, forget);
  if (n < 2) {
    torch::stable::zero_(grad_val);
    torch::stable::zero_(grad_forget);
    return std::make_tuple(grad_val, grad_forget);
  }
  const Prepared p = prepare<Backend>(val, forget, n, eps);
  Tensor a_v, a_f;
  if (backward_by_m(n, p.v.size(1), p.f.size(1))) {
    const Tensor m = torch::stable::matmul(t(p.v), p.f);  // [dv, df]
    a_v = torch::stable::matmul(p.f, t(m));               // [n, dv]
    a_f = torch::stable::matmul(p.v, m);                  // [n, df]
  } else {
    a_v = torch::stable::matmul(torch::stable::matmul(p.f, t(p.f)), p.v);
    a_f = torch::stable::matmul(torch::stable::matmul(p.v, t(p.v)), p.f);
  }
  Backend::input_gradient(grad, a_v, p.v, p.f, p.stats_v, p.d, n, offdiag_weight, grad_val);
  Backend::input_gradient(grad, a_f, p.f, p.v, p.stats_f, p.d, n, offdiag_weight, grad_forget);
  return std::make_tuple(grad_val, grad_forget);
}

} // namespace dau::ops::cross_correlation
