// CPU kernels of torch.ops.dau.cross_correlation_loss_forward and
// cross_correlation_loss_backward (schemas in ../registration.cpp; the
// computation is laid out in ../cross_correlation_common.h).
//
// The matrix products go through torch's matmul (BLAS, multi-threaded by
// torch); every other stage is one pass here: the standardization writes the
// standardized matrix and its per-column statistics, the loss is one
// reduction of M (or of the two Gram matrices) in float64 with independent
// partial sums, and each input's gradient is two passes over its rows (the
// column sums the backward of the standardization needs, then the gradient
// itself), with no temporaries. The column-wise passes split the columns
// among torch's threads when the matrix is large enough.

#include "../cross_correlation_common.h"
#include "cpu_common.h"

#include <torch/csrc/stable/library.h>
#include <torch/csrc/stable/ops.h>
#include <torch/csrc/stable/tensor.h>
#include <torch/headeronly/core/ScalarType.h>
#include <torch/headeronly/util/Exception.h>

#include <algorithm>
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

// Column ranges of a [rows, cols] matrix go to torch's thread pool when each
// holds at least this many elements (every column is reduced by one thread,
// in a fixed order, so the results do not depend on the thread count).
constexpr int64_t kGrainElements = int64_t{1} << 15;

// Calls f(c0, c1) over ranges of [0, cols), in parallel when worthwhile.
template <typename F>
void for_column_ranges(int64_t rows, int64_t cols, const F& f) {
  const int64_t grain = std::max<int64_t>(1, kGrainElements / std::max<int64_t>(rows, 1));
  torch::stable::parallel_for(0, cols, grain, f);
}

template <typename T>
void standardize_impl(const T* x, T* out, T* stats, int64_t n, int64_t cols, double eps) {
  for_column_ranges(n, cols, [&](int64_t c0, int64_t c1) {
    const int64_t width = c1 - c0;
    std::vector<double> mean(static_cast<size_t>(width), 0.0);
    std::vector<double> sq(static_cast<size_t>(width), 0.0);
    double* __restrict__ mp = mean.data();
    double* __restrict__ sp = sq.data();
    for (int64_t b = 0; b < n; ++b) {
      const T* __restrict__ row = x + b * cols + c0;
      for (int64_t i = 0; i < width; ++i) {
        mp[i] += static_cast<double>(row[i]);
      }
    }
    for (int64_t i = 0; i < width; ++i) {
      mp[i] /= static_cast<double>(n);
    }
    for (int64_t b = 0; b < n; ++b) {
      const T* __restrict__ row = x + b * cols + c0;
      for (int64_t i = 0; i < width; ++i) {
        const double c = static_cast<double>(row[i]) - mp[i];
        sp[i] += c * c;
      }
    }
    std::vector<T> center(static_cast<size_t>(width));
    T* __restrict__ cp = center.data();
    T* __restrict__ inv_t = stats + c0;
    T* __restrict__ coef = stats + cols + c0;
    for (int64_t i = 0; i < width; ++i) {
      const double s = std::sqrt(sp[i] / static_cast<double>(n - 1));
      cp[i] = static_cast<T>(mp[i]);
      inv_t[i] = static_cast<T>(1.0 / (s + eps));
      coef[i] = s > 0.0 ? static_cast<T>(1.0 / (static_cast<double>(n - 1) * s)) : T(0);
    }
    for (int64_t b = 0; b < n; ++b) {
      const T* __restrict__ row = x + b * cols + c0;
      T* __restrict__ dst = out + b * cols + c0;
      for (int64_t i = 0; i < width; ++i) {
        dst[i] = (row[i] - cp[i]) * inv_t[i];
      }
    }
  });
}

// sum_i a_i b_i in float64, with independent partial sums (a fixed order).
template <typename T>
double product_sum(const T* __restrict__ a, const T* __restrict__ b, int64_t count) {
  constexpr int64_t kLanes = 8;
  double part[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= count; i += kLanes) {
    for (int64_t j = 0; j < kLanes; ++j) {
      part[j] += static_cast<double>(a[i + j]) * static_cast<double>(b[i + j]);
    }
  }
  for (; i < count; ++i) {
    part[0] += static_cast<double>(a[i]) * static_cast<double>(b[i]);
  }
  return ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
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
  const int64_t shared = std::min(cols, other_cols);
  // The gradient w.r.t. the standardized matrix, recomputed in each pass:
  // gy_bi = c1 a_bi + c2_i other_bi (c2_i = 0 for i >= k, and no other_bi
  // for i >= shared).
  for_column_ranges(n, cols, [&](int64_t c0, int64_t c1_end) {
    const int64_t width = c1_end - c0;
    const int64_t paired = std::max<int64_t>(0, std::min(shared, c1_end) - c0);
    std::vector<T> c2(static_cast<size_t>(width), T(0));
    for (int64_t i = 0; i < width && c0 + i < k; ++i) {
      c2[i] = static_cast<T>((2.0 * g / dn) * ((1.0 - w) * d[c0 + i] / dn - 1.0));
    }
    std::vector<T> sum_g(static_cast<size_t>(width), T(0));
    std::vector<T> sum_gv(static_cast<size_t>(width), T(0));
    const T* __restrict__ c2p = c2.data();
    T* __restrict__ sg = sum_g.data();
    T* __restrict__ sgv = sum_gv.data();
    for (int64_t b = 0; b < n; ++b) {
      const T* __restrict__ ar = a + b * cols + c0;
      const T* __restrict__ orow = other + b * other_cols + c0;
      const T* __restrict__ srow = self + b * cols + c0;
      for (int64_t i = 0; i < paired; ++i) {
        const T gy = c1 * ar[i] + c2p[i] * orow[i];
        sg[i] += gy;
        sgv[i] += gy * srow[i];
      }
      for (int64_t i = paired; i < width; ++i) {
        const T gy = c1 * ar[i];
        sg[i] += gy;
        sgv[i] += gy * srow[i];
      }
    }
    const T* __restrict__ inv_t = stats + c0;
    const T* __restrict__ coef = stats + cols + c0;
    for (int64_t i = 0; i < width; ++i) {
      sg[i] = sg[i] / static_cast<T>(n);  // the mean of gy
      sgv[i] = sgv[i] * coef[i];
    }
    for (int64_t b = 0; b < n; ++b) {
      const T* __restrict__ ar = a + b * cols + c0;
      const T* __restrict__ orow = other + b * other_cols + c0;
      const T* __restrict__ srow = self + b * cols + c0;
      O* __restrict__ dst = out + b * cols + c0;
      for (int64_t i = 0; i < paired; ++i) {
        const T gy = c1 * ar[i] + c2p[i] * orow[i];
        dst[i] = static_cast<O>((gy - sg[i]) * inv_t[i] - srow[i] * sgv[i]);
      }
      for (int64_t i = paired; i < width; ++i) {
        const T gy = c1 * ar[i];
        dst[i] = static_cast<O>((gy - sg[i]) * inv_t[i] - srow[i] * sgv[i]);
      }
    }
  });
  std::fill(out + n * cols, out + total_rows * cols, O(0));
}

struct CpuBackend {
  struct Guard {
    explicit Guard(const Tensor&) {}
  };

  static void check_device(const char* op, const char* name, const Tensor& t) {
    STD_TORCH_CHECK(t.is_cpu(), op, ": the CPU kernel got ", name, " on ", device_string(t));
  }

  static Tensor standardize(const Tensor& x, double eps, Tensor& stats) {
    Tensor out = torch::stable::new_empty(x, {x.size(0), x.size(1)});
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
      for_column_ranges(v.size(0), k, [&](int64_t c0, int64_t c1) {
        for (int64_t b = 0; b < v.size(0); ++b) {
          const T* __restrict__ vr = vp + b * dv;
          const T* __restrict__ fr = fp + b * df;
          for (int64_t i = c0; i < c1; ++i) {
            dp[i] += static_cast<double>(vr[i]) * static_cast<double>(fr[i]);
          }
        }
      });
    });
    return d;
  }

  static Tensor loss(
      const Tensor& a, const Tensor& b, const Tensor& d, int64_t n, double w, ScalarType dtype) {
    const Tensor ac = dau::ops::contiguous(a);
    const Tensor bc = b.defined() ? dau::ops::contiguous(b) : ac;
    double s = 0.0;
    dispatch_compute(ac.scalar_type(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* __restrict__ ap = ac.const_data_ptr<T>();
      const T* __restrict__ bp = bc.const_data_ptr<T>();
      s = product_sum(ap, bp, ac.numel());
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
    const Tensor ac = dau::ops::contiguous(a);
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

} // namespace

} // namespace dau::ops

STABLE_TORCH_LIBRARY_IMPL(dau, CPU, m) {
  using dau::ops::CpuBackend;
  m.impl(
      "cross_correlation_loss_forward",
      TORCH_BOX(&dau::ops::cross_correlation::forward<CpuBackend>));
  m.impl(
      "cross_correlation_loss_backward",
      TORCH_BOX(&dau::ops::cross_correlation::backward<CpuBackend>));
}
