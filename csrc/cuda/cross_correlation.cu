// CUDA kernels of torch.ops.dau.cross_correlation_loss_forward and
// cross_correlation_loss_backward (schemas in ../registration.cpp; the
// computation is laid out in ../cross_correlation_common.h).
//
// The matrix products go through torch's matmul (cuBLAS, on the current
// stream, honouring torch's TF32 setting); the other stages are kernels here:
// the standardization (one thread per column: mean, variance and the
// standardized column, with coalesced row-major accesses across threads),
// the diagonal dots, one reduction of M (or of the two Gram matrices) in
// float64 with a block sum and one atomic add per block, a one-block kernel
// that writes the loss, and per input one kernel (one thread per column) for
// the gradient with the backward of the standardization. No host
// synchronisation; everything runs on torch's current CUDA stream.

#include "cuda_common.cuh"

#include "../cross_correlation_common.h"

#include <torch/csrc/stable/accelerator.h>
#include <torch/csrc/stable/library.h>
#include <torch/csrc/stable/macros.h>
#include <torch/csrc/stable/ops.h>
#include <torch/csrc/stable/tensor.h>
#include <torch/headeronly/core/ScalarType.h>
#include <torch/headeronly/util/Exception.h>

#include <cstdint>
#include <tuple>
#include <vector>

namespace dau::ops {

using torch::headeronly::ScalarType;
using torch::stable::Tensor;

namespace {

constexpr int kThreads = 256;

template <typename F>
void dispatch_compute(ScalarType dtype, const F& f) {
  if (dtype == ScalarType::Double) {
    f(cuda::TypeTag<double>{});
  } else {
    f(cuda::TypeTag<float>{});
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads) standardize_kernel(
    const T* __restrict__ x, T* __restrict__ out, T* __restrict__ stats, int64_t n,
    int64_t cols, double eps) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= cols) {
    return;
  }
  double mean = 0.0;
  for (int64_t b = 0; b < n; ++b) {
    mean += static_cast<double>(x[b * cols + i]);
  }
  mean /= static_cast<double>(n);
  double sq = 0.0;
  for (int64_t b = 0; b < n; ++b) {
    const double c = static_cast<double>(x[b * cols + i]) - mean;
    sq += c * c;
  }
  const double s = sqrt(sq / static_cast<double>(n - 1));
  const T inv_t = static_cast<T>(1.0 / (s + eps));
  stats[i] = inv_t;
  stats[cols + i] = s > 0.0 ? static_cast<T>(1.0 / (static_cast<double>(n - 1) * s)) : T(0);
  const T center = static_cast<T>(mean);
  for (int64_t b = 0; b < n; ++b) {
    out[b * cols + i] = (x[b * cols + i] - center) * inv_t;
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads) column_dots_kernel(
    const T* __restrict__ v, const T* __restrict__ f, double* __restrict__ d, int64_t n,
    int64_t dv, int64_t df, int64_t k) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= k) {
    return;
  }
  double sum = 0.0;
  for (int64_t b = 0; b < n; ++b) {
    sum += static_cast<double>(v[b * dv + i]) * static_cast<double>(f[b * df + i]);
  }
  d[i] = sum;
}

// scratch[0] += sum(a * b) over `count` elements.
template <typename T>
__global__ void __launch_bounds__(kThreads) product_sum_kernel(
    const T* __restrict__ a, const T* __restrict__ b, int64_t count, double* __restrict__ scratch) {
  double sum = 0.0;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += stride) {
    sum += static_cast<double>(a[i]) * static_cast<double>(b[i]);
  }
  sum = cuda::block_sum<kThreads>(sum);
  if (threadIdx.x == 0) {
    atomicAdd(scratch, sum);
  }
}

template <typename O>
__global__ void __launch_bounds__(kThreads) loss_kernel(
    const double* __restrict__ d, int64_t k, const double* __restrict__ scratch, double n,
    double w, O* __restrict__ out) {
  double on = 0.0;
  double diag_sq = 0.0;
  for (int64_t i = threadIdx.x; i < k; i += kThreads) {
    const double c = d[i] / n;
    on += (c - 1.0) * (c - 1.0);
    diag_sq += c * c;
  }
  on = cuda::block_sum<kThreads>(on);
  __syncthreads();
  diag_sq = cuda::block_sum<kThreads>(diag_sq);
  if (threadIdx.x == 0) {
    *out = cuda::from_acc<O>(
        static_cast<typename cuda::Acc<O>::type>(on + w * (scratch[0] / (n * n) - diag_sq)));
  }
}

template <typename T, typename O>
__global__ void __launch_bounds__(kThreads) input_gradient_kernel(
    const double* __restrict__ grad,
    const T* __restrict__ a,
    const T* __restrict__ self,
    const T* __restrict__ other,
    const T* __restrict__ stats,
    const double* __restrict__ d,
    int64_t n,
    int64_t cols,
    int64_t other_cols,
    int64_t k,
    int64_t total_rows,
    double w,
    O* __restrict__ out) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= cols) {
    return;
  }
  const double g = *grad;
  const double dn = static_cast<double>(n);
  const T c1 = static_cast<T>(2.0 * g * w / (dn * dn));
  const T c2 = i < k ? static_cast<T>((2.0 * g / dn) * ((1.0 - w) * d[i] / dn - 1.0)) : T(0);
  const bool paired = i < other_cols;
  T sum_g = T(0);
  T sum_gv = T(0);
  for (int64_t b = 0; b < n; ++b) {
    const T gy = c1 * a[b * cols + i] + (paired ? c2 * other[b * other_cols + i] : T(0));
    sum_g += gy;
    sum_gv += gy * self[b * cols + i];
  }
  const T mean_g = sum_g / static_cast<T>(n);
  const T scale_v = sum_gv * stats[cols + i];
  const T inv_t = stats[i];
  for (int64_t b = 0; b < n; ++b) {
    const T gy = c1 * a[b * cols + i] + (paired ? c2 * other[b * other_cols + i] : T(0));
    out[b * cols + i] = cuda::from_acc<O>(static_cast<typename cuda::Acc<O>::type>(
        (gy - mean_g) * inv_t - self[b * cols + i] * scale_v));
  }
  for (int64_t b = n; b < total_rows; ++b) {
    out[b * cols + i] = cuda::from_acc<O>(typename cuda::Acc<O>::type(0));
  }
}

unsigned int column_blocks(int64_t cols) {
  return static_cast<unsigned int>((cols + kThreads - 1) / kThreads);
}

struct CudaBackend {
  static constexpr const char* kOpName = "cross_correlation_loss";

  struct Guard {
    explicit Guard(const Tensor& t) : guard(t.get_device_index()) {}
    torch::stable::accelerator::DeviceGuard guard;
  };

  static void check_device(const char* op, const char* name, const Tensor& t) {
    STD_TORCH_CHECK(t.is_cuda(), op, ": the CUDA kernel got ", name, " on ", device_string(t));
  }

  static Tensor standardize(const Tensor& x, double eps, Tensor& stats) {
    Tensor out = torch::stable::new_empty(x, {x.size(0), x.size(1)});
    const cudaStream_t stream = cuda::current_stream(x.get_device_index());
    dispatch_compute(x.scalar_type(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      standardize_kernel<T><<<column_blocks(x.size(1)), kThreads, 0, stream>>>(
          static_cast<const T*>(x.const_data_ptr()), static_cast<T*>(out.mutable_data_ptr()),
          static_cast<T*>(stats.mutable_data_ptr()), x.size(0), x.size(1), eps);
      STD_CUDA_KERNEL_LAUNCH_CHECK();
    });
    return out;
  }

  static Tensor column_dots(const Tensor& v, const Tensor& f, int64_t k) {
    Tensor d = torch::stable::new_empty(v, {k}, ScalarType::Double);
    const cudaStream_t stream = cuda::current_stream(v.get_device_index());
    dispatch_compute(v.scalar_type(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      column_dots_kernel<T><<<column_blocks(k), kThreads, 0, stream>>>(
          static_cast<const T*>(v.const_data_ptr()), static_cast<const T*>(f.const_data_ptr()),
          static_cast<double*>(d.mutable_data_ptr()), v.size(0), v.size(1), f.size(1), k);
      STD_CUDA_KERNEL_LAUNCH_CHECK();
    });
    return d;
  }

  static Tensor loss(
      const Tensor& a, const Tensor& b, const Tensor& d, int64_t n, double w, ScalarType dtype) {
    const Tensor ac = dau::ops::contiguous(a);
    const Tensor bc = b.defined() ? dau::ops::contiguous(b) : ac;
    Tensor scratch = torch::stable::new_zeros(d, {1}, ScalarType::Double);
    Tensor out = torch::stable::new_empty(ac, std::vector<int64_t>{}, dtype);
    const cudaStream_t stream = cuda::current_stream(a.get_device_index());
    const int64_t count = ac.numel();
    dispatch_compute(ac.scalar_type(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      product_sum_kernel<T><<<cuda::blocks_for(count, kThreads, 1024), kThreads, 0, stream>>>(
          static_cast<const T*>(ac.const_data_ptr()), static_cast<const T*>(bc.const_data_ptr()),
          count, static_cast<double*>(scratch.mutable_data_ptr()));
      STD_CUDA_KERNEL_LAUNCH_CHECK();
    });
    cuda::dispatch_float(dtype, kOpName, [&](auto tag) {
      using O = typename decltype(tag)::type;
      loss_kernel<O><<<1, kThreads, 0, stream>>>(
          static_cast<const double*>(d.const_data_ptr()), d.numel(),
          static_cast<const double*>(scratch.const_data_ptr()), static_cast<double>(n), w,
          static_cast<O*>(out.mutable_data_ptr()));
      STD_CUDA_KERNEL_LAUNCH_CHECK();
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
    const Tensor g = torch::stable::to(grad, ScalarType::Double);
    const Tensor ac = dau::ops::contiguous(a);
    const cudaStream_t stream = cuda::current_stream(self.get_device_index());
    dispatch_compute(self.scalar_type(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      cuda::dispatch_float(out.scalar_type(), kOpName, [&](auto out_tag) {
        using O = typename decltype(out_tag)::type;
        input_gradient_kernel<T, O><<<column_blocks(self.size(1)), kThreads, 0, stream>>>(
            static_cast<const double*>(g.const_data_ptr()),
            static_cast<const T*>(ac.const_data_ptr()),
            static_cast<const T*>(self.const_data_ptr()),
            static_cast<const T*>(other.const_data_ptr()),
            static_cast<const T*>(stats.const_data_ptr()),
            static_cast<const double*>(d.const_data_ptr()), n, self.size(1), other.size(1),
            d.numel(), out.size(0), w, static_cast<O*>(out.mutable_data_ptr()));
        STD_CUDA_KERNEL_LAUNCH_CHECK();
      });
    });
  }
};

} // namespace

} // namespace dau::ops

STABLE_TORCH_LIBRARY_IMPL(dau, CUDA, m) {
  using dau::ops::CudaBackend;
  m.impl(
      "cross_correlation_loss_forward",
      TORCH_BOX(&dau::ops::cross_correlation::forward<CudaBackend>));
  m.impl(
      "cross_correlation_loss_backward",
      TORCH_BOX(&dau::ops::cross_correlation::backward<CudaBackend>));
}
