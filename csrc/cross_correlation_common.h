// What the CPU and CUDA kernels of torch.ops.dau.cross_correlation_loss_forward
// and cross_correlation_loss_backward share: the argument checks and the whole
// computation but its element-wise stages, which each backend supplies
// (cpu/cross_correlation.cpp, cuda/cross_correlation.cu).
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
// The forward pass returns, besides the loss, everything the backward pass
// starts from, so that nothing is computed twice: v, f, their per-column
// statistics with d, and the products (M, or the two Gram matrices). The
// products run through torch's matmul (BLAS / cuBLAS): by M when the feature
// dims are small against the batch, else by the n x n Gram matrices, whichever
// needs fewer multiply-adds over forward and backward together (M: n D_v D_f,
// then 2 n D_v D_f for A_v and A_f; Gram: n^2 (D_v + D_f), then as much again).
// Everything else is one pass of the backend's element-wise kernels, in
// float32 for float16/bfloat16 inputs.
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
constexpr const char* kForwardOp = "cross_correlation_loss_forward";
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

// The arithmetic dtype: float64 stays, everything else is float32.
inline ScalarType compute_dtype(ScalarType dtype) {
  return dtype == ScalarType::Double ? ScalarType::Double : ScalarType::Float;
}

inline int64_t rows_of(const Tensor& val, const Tensor& forget) {
  return std::min(val.size(0), forget.size(0));
}

// Whether the products go through M (else through the Gram matrices): the
// multiply-adds of forward and backward together, 3 n dv df against
// 2 n^2 (dv + df). dau/ops/_fake.py mirrors this (the shapes of the saved
// products depend on it).
inline bool by_m(int64_t n, int64_t dv, int64_t df) {
  return 3 * dv * df <= 2 * n * (dv + df);
}

// The length of the saved statistics of features of widths dv and df:
// 1 / t and 1 / ((n - 1) s) of each column of v, then of f, then d.
inline int64_t stats_length(int64_t dv, int64_t df) {
  return 2 * dv + 2 * df + std::min(dv, df);
}

// The checks of cross_correlation_loss_backward: the saved tensors must be
// what cross_correlation_loss_forward returned for val_rows x dv and
// forget_rows x df features.
inline void check_saved(
    const Tensor& grad,
    const Tensor& v,
    const Tensor& f,
    const Tensor& stats,
    const Tensor& a,
    const Tensor& b,
    int64_t val_rows,
    int64_t forget_rows,
    double offdiag_weight) {
  const char* op = kBackwardOp;
  check_float_operand(op, "grad", grad);
  STD_TORCH_CHECK(
      grad.numel() == 1, op, ": grad must hold one value (the loss is 0-dim), got shape ",
      shape_string(grad));
  const struct {
    const char* name;
    const Tensor& t;
  } saved[] = {{"v", v}, {"f", f}, {"stats", stats}, {"a", a}, {"b", b}};
  const ScalarType dtype = compute_dtype(grad.scalar_type());
  for (const auto& s : saved) {
    check_float_operand(op, s.name, s.t);
    STD_TORCH_CHECK(
        s.t.scalar_type() == dtype, op, ": ", s.name, " has dtype ",
        dtype_string(s.t.scalar_type()), " but grad of dtype ", dtype_string(grad.scalar_type()),
        " needs ", dtype_string(dtype), " (what cross_correlation_loss_forward saves)");
    check_same_device(op, s.name, s.t, "grad", grad);
  }
  STD_TORCH_CHECK(
      v.dim() == 2 && f.dim() == 2 && v.size(0) == f.size(0), op,
      ": v and f must be 2-D with as many rows, got shapes ", shape_string(v), " and ",
      shape_string(f));
  const int64_t n = v.size(0);
  const int64_t dv = v.size(1);
  const int64_t df = f.size(1);
  STD_TORCH_CHECK(
      val_rows >= 0 && forget_rows >= 0 && std::min(val_rows, forget_rows) == n, op,
      ": v and f have ", n, " rows, but min(val_rows, forget_rows) = min(", val_rows, ", ",
      forget_rows, ")");
  STD_TORCH_CHECK(
      stats.dim() == 1 && stats.size(0) == stats_length(dv, df), op, ": stats must be [",
      stats_length(dv, df), "], got shape ", shape_string(stats));
  const bool m_route = by_m(n, dv, df);
  const int64_t a_rows = m_route ? dv : n;
  const int64_t a_cols = m_route ? df : n;
  const int64_t b_size = m_route ? 0 : n;
  STD_TORCH_CHECK(
      a.dim() == 2 && a.size(0) == a_rows && a.size(1) == a_cols, op, ": a must be [", a_rows,
      ", ", a_cols, "], got shape ", shape_string(a));
  STD_TORCH_CHECK(
      b.dim() == 2 && b.size(0) == b_size && b.size(1) == b_size, op, ": b must be [", b_size,
      ", ", b_size, "], got shape ", shape_string(b));
  STD_TORCH_CHECK(
      std::isfinite(offdiag_weight), op, ": offdiag_weight must be finite, got ",
      offdiag_weight);
}

inline Tensor t(const Tensor& x) {
  return torch::stable::transpose(x, 0, 1);
}

// Entries [start, start + length) of x along dim 0 (a view).
inline Tensor slice(const Tensor& x, int64_t start, int64_t length) {
  Tensor all = x;
  return torch::stable::narrow(all, 0, start, length);
}

// The first n rows of x as a contiguous matrix of the compute dtype.
inline Tensor leading_rows(const Tensor& x, int64_t n) {
  Tensor rows = slice(x, 0, n);
  const ScalarType dtype = compute_dtype(x.scalar_type());
  if (rows.scalar_type() != dtype) {
    rows = torch::stable::to(rows, dtype);
  }
  return dau::ops::contiguous(rows);
}

// What each backend supplies (as static member functions, and a type):
//
//   void check_device(const char* op, const char* name, const Tensor& t)
//     An error unless t is on the backend's device.
//   Guard: constructed from a tensor, makes its device current while alive.
//   Tensor standardize(const Tensor& x, double eps, Tensor& stats)
//     x: [n, D] contiguous, compute dtype, n >= 2. Returns (x - mean) / t,
//     [n, D] contiguous, and fills stats (a contiguous [2 D] view of the
//     compute dtype) with 1 / t and 1 / ((n - 1) s) (0 if s = 0).
//   Tensor column_dots(const Tensor& v, const Tensor& f, int64_t k)
//     d_i = sum_b v_bi f_bi for i < k, as a float64 tensor [k].
//   Tensor loss(const Tensor& a, const Tensor& b, const Tensor& d, int64_t n,
//               double w, ScalarType dtype)
//     The 0-dim loss of dtype `dtype`; S = sum(a * a) when b is undefined
//     (a = M), else sum(a * b) (a, b = the Gram matrices).
//   void input_gradient(const Tensor& grad, const Tensor& a, const Tensor& self,
//                       const Tensor& other, const Tensor& stats, const Tensor& d,
//                       int64_t n, double w, Tensor& out)
//     out: [B, D] contiguous of grad's dtype; its first n rows get dL/dx
//     (a = A for this input, self / other the standardized inputs, stats as
//     standardize filled it, d float64), the rest 0.

// loss, v, f, stats, a, b: see the schema of cross_correlation_loss_forward.
using Forward = std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor>;

// The kernel of cross_correlation_loss_forward.
template <typename Backend>
Forward forward(const Tensor& val, const Tensor& forget, double offdiag_weight, double eps) {
  check_arguments(kOp, val, forget, offdiag_weight, eps);  // named as the user calls it
  Backend::check_device(kForwardOp, "val_features", val);
  const typename Backend::Guard guard(val);
  const int64_t n = rows_of(val, forget);
  const int64_t dv = val.size(1);
  const int64_t df = forget.size(1);
  const int64_t k = std::min(dv, df);
  const ScalarType dtype = compute_dtype(val.scalar_type());
  const bool m_route = by_m(n, dv, df);
  if (n < 2) {
    const int64_t side = m_route ? 0 : n;
    return std::make_tuple(
        torch::stable::new_zeros(val, std::vector<int64_t>{}),
        torch::stable::new_zeros(val, {n, dv}, dtype),
        torch::stable::new_zeros(val, {n, df}, dtype),
        torch::stable::new_zeros(val, {stats_length(dv, df)}, dtype),
        torch::stable::new_zeros(val, {m_route ? dv : n, m_route ? df : n}, dtype),
        torch::stable::new_zeros(val, {side, side}, dtype));
  }
  Tensor stats = torch::stable::new_empty(val, {stats_length(dv, df)}, dtype);
  Tensor stats_v = slice(stats, 0, 2 * dv);
  Tensor stats_f = slice(stats, 2 * dv, 2 * df);
  Tensor v = Backend::standardize(leading_rows(val, n), eps, stats_v);
  Tensor f = Backend::standardize(leading_rows(forget, n), eps, stats_f);
  const Tensor d = Backend::column_dots(v, f, k);
  Tensor saved_d = slice(stats, 2 * dv + 2 * df, k);
  torch::stable::copy_(saved_d, d);
  Tensor a, b, loss;
  if (m_route) {
    a = torch::stable::matmul(t(v), f);
    b = torch::stable::new_empty(val, {0, 0}, dtype);
    loss = Backend::loss(a, Tensor(), d, n, offdiag_weight, val.scalar_type());
  } else {
    a = torch::stable::matmul(v, t(v));
    b = torch::stable::matmul(f, t(f));
    loss = Backend::loss(a, b, d, n, offdiag_weight, val.scalar_type());
  }
  return std::make_tuple(loss, v, f, stats, a, b);
}

// The kernel of cross_correlation_loss_backward.
template <typename Backend>
std::tuple<Tensor, Tensor> backward(
    const Tensor& grad,
    const Tensor& saved_v,
    const Tensor& saved_f,
    const Tensor& saved_stats,
    const Tensor& saved_a,
    const Tensor& saved_b,
    int64_t val_rows,
    int64_t forget_rows,
    double offdiag_weight) {
  check_saved(
      grad, saved_v, saved_f, saved_stats, saved_a, saved_b, val_rows, forget_rows,
      offdiag_weight);
  Backend::check_device(kBackwardOp, "grad", grad);
  const typename Backend::Guard guard(grad);
  const int64_t n = saved_v.size(0);
  const int64_t dv = saved_v.size(1);
  const int64_t df = saved_f.size(1);
  Tensor grad_val = torch::stable::new_empty(grad, {val_rows, dv});
  Tensor grad_forget = torch::stable::new_empty(grad, {forget_rows, df});
  if (n < 2) {
    torch::stable::zero_(grad_val);
    torch::stable::zero_(grad_forget);
    return std::make_tuple(grad_val, grad_forget);
  }
  const Tensor v = dau::ops::contiguous(saved_v);
  const Tensor f = dau::ops::contiguous(saved_f);
  const Tensor stats = dau::ops::contiguous(saved_stats);
  const Tensor d =
      torch::stable::to(slice(stats, 2 * dv + 2 * df, std::min(dv, df)), ScalarType::Double);
  Tensor a_v, a_f;
  if (by_m(n, dv, df)) {
    a_v = torch::stable::matmul(f, t(saved_a));  // f M^T: [n, dv]
    a_f = torch::stable::matmul(v, saved_a);     // v M:   [n, df]
  } else {
    a_v = torch::stable::matmul(saved_b, v);  // G^f v
    a_f = torch::stable::matmul(saved_a, f);  // G^v f
  }
  Backend::input_gradient(
      grad, a_v, v, f, slice(stats, 0, 2 * dv), d, n, offdiag_weight, grad_val);
  Backend::input_gradient(
      grad, a_f, f, v, slice(stats, 2 * dv, 2 * df), d, n, offdiag_weight, grad_forget);
  return std::make_tuple(grad_val, grad_forget);
}

} // namespace dau::ops::cross_correlation
