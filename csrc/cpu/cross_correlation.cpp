// CPU kernels of torch.ops.dau.cross_correlation_loss and its backward
// (schemas in ../registration.cpp; the computation is laid out in
// ../cross_correlation_common.h).
//
// The matrix products go through torch's matmul (BLAS, multi-threaded by
// torch); every other stage is one pass here: the standardization writes the
// standardized matrix and its per-column statistics, the loss is one
// reduction of M (or of the two Gram matrices) in float64, and each input's
// gradient is two passes over its rows (the column sums the backward of the
// standardization needs, then the gradient itself), with no temporaries.

#include "../cross_correlation_common.h"
#include "cpu_common.h"

#include <torch/csrc/stable/library.h>
#include <torch/csrc/stable/ops.h>
#include <torch/csrc/stable/tensor.h>
#include <torch/headeronly/core/ScalarType.h>
#include <torch/headeronly/util/Exception.h>

#include <cmath>
#include <cstdint>
#include <tuple>
#include <vector>

namespace dau::ops {

using torch::headeronly::ScalarType;
using torch::stable::Tensor;

namespace {

// Calls f(TypeTag<T>{}) with T float or double, the compute type of `dtype`.
template <typename F>
void dispatch_compute(ScalarType dtype, const F& f) {
  if (dtype == ScalarType::Double) {
    f(cpu::TypeTag<double>{});
  } else {
    f(cpu::TypeTag<float>{});
  }
}

template <typename T>
void standardize_impl(const T* x, T* out, T* stats, int64_t n, int64_t cols, double eps) {
  std::vector<double> mean(static_cast<size_t>(cols), 0.0);
  std::vector<double> sq(static_cast<size_t>(cols), 0.0);
  for (int64_t b = 0; b < n; ++b) {
    const T* __restrict__ row = x + b * cols;
    for (int64_t i = 0; i < cols; ++i) {
      mean[i] += static_cast<double>(row[i]);
    }
  }
  for (int64_t i = 0; i < cols; ++i) {
    mean[i] /= static_cast<double>(n);
  }
  for (int64_t b = 0; b < n; ++b) {
    const T* __restrict__ row = x + b * cols;
    for (int64_t i = 0; i < cols; ++i) {
      const double c = static_cast<double>(row[i]) - mean[i];
      sq[i] += c * c;
    }
  }
  std::vector<T> center(static_cast<size_t>(cols));
  T* __restrict__ inv_t = stats;
  T* __restrict__ coef = stats + cols;
  for (int64_t i = 0; i < cols; ++i) {
    const double s = std::sqrt(sq[i] / static_cast<double>(n - 1));
    center[i] = static_cast<T>(mean[i]);
    inv_t[i] = static_cast<T>(1.0 / (s + eps));
    coef[i] = s > 0.0 ? static_cast<T>(1.0 / (static_cast<double>(n - 1) * s)) : T(0);
  }
  for (int64_t b = 0; b < n; ++b) {
    const T* __restrict__ row = x + b * cols;
    T* __restrict__ dst = out + b * cols;
    for (int64_t i = 0; i < cols; ++i) {
      dst[i] = (row[i] - center[i]) * inv_t[i];
    }
  }
}

template <typename T, typename O>
void input_gradient_impl(
    double g,
    const T* a,
    const T* self,
    const T* other,
    const T* stats,
    const double* d,
    int64_t n,
    int64_t cols,
    int64_t other_cols,
    int64_t k,
    int64_t total_rows,
    double w,
    O* out) {
  const double dn = static_cast<double>(n);
  const T c1 = static_cast<T>(2.0 * g * w / (dn * dn));
  std::vector<T> c2(static_cast<size_t>(cols), T(0));
  for (int64_t i = 0; i < k; ++i) {
    c2[i] = static_cast<T>((2.0 * g / dn) * ((1.0 - w) * d[i] / dn - 1.0));
  }
  std::vector<T> sum_g(static_cast<size_t>(cols), T(0));
  std::vector<T> sum_gv(static_cast<size_t>(cols), T(0));
  const T* __restrict__ c2p = c2.data();
  const int64_t shared = std::min(cols, other_cols);
  // The gradient w.r.t. the standardized matrix, recomputed in each pass:
  // gy_bi = c1 a_bi + c2_i other_bi (c2_i = 0 for i >= k).
  for (int64_t b = 0; b < n; ++b) {
    const T* __restrict__ ar = a + b * cols;
    const T* __restrict__ orow = other + b * other_cols;
    const T* __restrict__ srow = self + b * cols;
    T* __restrict__ sg = sum_g.data();
    T* __restrict__ sgv = sum_gv.data();
    for (int64_t i = 0; i < shared; ++i) {
      const T gy = c1 * ar[i] + c2p[i] * orow[i];
      sg[i] += gy;
      sgv[i] += gy * srow[i];
    }
    for (int64_t i = shared; i < cols; ++i) {
      const T gy = c1 * ar[i];
      sg[i] += gy;
      sgv[i] += gy * srow[i];
    }
  }
  const T* __restrict__ inv_t = stats;
  const T* __restrict__ coef = stats + cols;
  std::vector<T> mean_g(static_cast<size_t>(cols));
  std::vector<T> scale_v(static_cast<size_t>(cols));
  for (int64_t i = 0; i < cols; ++i) {
    mean_g[i] = sum_g[i] / static_cast<T>(n);
    scale_v[i] = sum_gv[i] * coef[i];
  }
  const T* __restrict__ mg = mean_g.data();
  const T* __restrict__ sv = scale_v.data();
  for (int64_t b = 0; b < n; ++b) {
    const T* __restrict__ ar = a + b * cols;
    const T* __restrict__ orow = other + b * other_cols;
    const T* __restrict__ srow = self + b * cols;
    O* __restrict__ dst = out + b * cols;
    for (int64_t i = 0; i < cols; ++i) {
      const T gy = c1 * ar[i] + (i < shared ? c2p[i] * orow[i] : T(0));
      dst[i] = static_cast<O>((gy - mg[i]) * inv_t[i] - srow[i] * sv[i]);
    }
  }
  for (int64_t idx = n * cols; idx < total_rows * cols; ++idx) {
    out[idx] = O(0);
  }
}

struct CpuBackend {
  static Tensor standardize(const Tensor& x, double eps, Tensor& stats) {
    Tensor out = torch::stable::new_empty(x, {x.size(0), x.size(1)});
    stats = torch::stable::new_empty(x, {2, x.size(1)});
    dispatch_compute(x.scalar_type(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      standardize_impl<T>(
          x.const_data_ptr<T>(), out.mutable_data_ptr<T>(), stats.mutable_data_ptr<T>(),
          x.size(0), x.size(1), eps);
    });
    return out;
  }

  static Tensor column_dots(const Tensor& v, const Tensor& f, int64_t k) {
    Tensor d = torch::stable::new_zeros(v, {k}, ScalarType::Double);
    double* dp = d.mutable_data_ptr<double>();
    dispatch_compute(v.scalar_type(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* vp = v.const_data_ptr<T>();
      const T* fp = f.const_data_ptr<T>();
      const int64_t dv = v.size(1);
      const int64_t df = f.size(1);
      for (int64_t b = 0; b < v.size(0); ++b) {
        const T* __restrict__ vr = vp + b * dv;
        const T* __restrict__ fr = fp + b * df;
        for (int64_t i = 0; i < k; ++i) {
          dp[i] += static_cast<double>(vr[i]) * static_cast<double>(fr[i]);
        }
      }
    });
    return d;
  }

  static Tensor loss(
      const Tensor& a, const Tensor& b, const Tensor& d, int64_t n, double w, ScalarType dtype) {
    const Tensor ac = torch::stable::contiguous(a);
    const Tensor bc = b.defined() ? torch::stable::contiguous(b) : ac;
    double s = 0.0;
    dispatch_compute(ac.scalar_type(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* __restrict__ ap = ac.const_data_ptr<T>();
      const T* __restrict__ bp = bc.const_data_ptr<T>();
      const int64_t count = ac.numel();
      for (int64_t i = 0; i < count; ++i) {
        s += static_cast<double>(ap[i]) * static_cast<double>(bp[i]);
      }
    });
    const double dn = static_cast<double>(n);
    const double* dp = d.const_data_ptr<double>();
    double on = 0.0;
    double diag_sq = 0.0;
    for (int64_t i = 0; i < d.numel(); ++i) {
      const double c = dp[i] / dn;
      on += (c - 1.0) * (c - 1.0);
      diag_sq += c * c;
    }
    const double value = on + w * (s / (dn * dn) - diag_sq);
    Tensor out = torch::stable::new_empty(ac, std::vector<int64_t>{}, dtype);
    cpu::dispatch_float(dtype, kOpName, [&](auto tag) {
      using O = typename decltype(tag)::type;
      *out.mutable_data_ptr<O>() = static_cast<O>(value);
    });
    return out;
  }

  static void input_gradient(
      const Tensor& grad,
      const Tensor& a,
      const Tensor& self,
      const Tensor& other,
      const Tensor& stats,
      const Tensor& d,
      int64_t n,
      double w,
      Tensor& out) {
    const double g = *torch::stable::to(grad, ScalarType::Double).const_data_ptr<double>();
    const Tensor ac = torch::stable::contiguous(a);
    dispatch_compute(self.scalar_type(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      cpu::dispatch_float(out.scalar_type(), kOpName, [&](auto out_tag) {
        using O = typename decltype(out_tag)::type;
        input_gradient_impl<T, O>(
            g, ac.const_data_ptr<T>(), self.const_data_ptr<T>(), other.const_data_ptr<T>(),
            stats.const_data_ptr<T>(), d.const_data_ptr<double>(), n, self.size(1),
            other.size(1), d.numel(), out.size(0), w, out.mutable_data_ptr<O>());
      });
    });
  }

  static constexpr const char* kOpName = "cross_correlation_loss";
};

void check_cpu(const char* op, const Tensor& val) {
  STD_TORCH_CHECK(
      val.is_cpu(), op, ": the CPU kernel got val_features on ", device_string(val));
}

} // namespace

Tensor cross_correlation_loss_cpu(
    const Tensor& val_features, const Tensor& forget_features, double offdiag_weight, double eps) {
  cross_correlation::check_arguments(
      cross_correlation::kOp, val_features, forget_features, offdiag_weight, eps);
  check_cpu(cross_correlation::kOp, val_features);
  return cross_correlation::loss<CpuBackend>(val_features, forget_features, offdiag_weight, eps);
}

std::tuple<Tensor, Tensor> cross_correlation_loss_backward_cpu(
    const Tensor& grad,
    const Tensor& val_features,
    const Tensor& forget_features,
    double offdiag_weight,
    double eps) {
  cross_correlation::check_arguments(
      cross_correlation::kBackwardOp, val_features, forget_features, offdiag_weight, eps);
  cross_correlation::check_grad(grad, val_features);
  check_cpu(cross_correlation::kBackwardOp, val_features);
  return cross_correlation::backward<CpuBackend>(
      grad, val_features, forget_features, offdiag_weight, eps);
}

} // namespace dau::ops

STABLE_TORCH_LIBRARY_IMPL(dau, CPU, m) {
  m.impl("cross_correlation_loss", TORCH_BOX(&dau::ops::cross_correlation_loss_cpu));
  m.impl(
      "cross_correlation_loss_backward",
      TORCH_BOX(&dau::ops::cross_correlation_loss_backward_cpu));
}
