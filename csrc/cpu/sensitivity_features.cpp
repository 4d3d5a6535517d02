// CPU kernels of torch.ops.dau.sensitivity_features and its backward
// (schemas in ../registration.cpp).
//
// Both passes go over blocks of rows (about kBlockElements elements): the
// rows of one copy of a block are contiguous in noisy_logits, so the inner
// loops run over the whole block (vectorized, whatever C is) against the
// block's logits, with the block's accumulators in L1. Forward: the
// sensitivity of the block sums |noisy - logits| over the m noisy copies
// (float32 for float16/bfloat16 inputs), then each output row
// [logits | one_hot | sensitivity] is written once, scaled once by
// 1 / (m * sigma). Backward: one pass writes the gradient of every noisy row
// (sign(noisy - logits) times the scaled gradient) and sums them, then the
// gradient of logits (its own part minus that sum). Blocks are spread over
// torch's intra-op thread pool when the batch is large enough.

#include "../sensitivity_features_common.h"
#include "cpu_common.h"

#include <torch/csrc/stable/library.h>
#include <torch/csrc/stable/ops.h>
#include <torch/csrc/stable/tensor.h>
#include <torch/headeronly/util/Exception.h>

#include <algorithm>
#include <cstdint>
#include <tuple>
#include <vector>

namespace dau::ops {

using torch::stable::Tensor;

namespace {

// Work of one row is about (m + 3) * C elements; a chunk of rows is at least
// this many elements before the thread pool is used.
constexpr int64_t kGrainElements = int64_t{1} << 16;

// Rows are processed in blocks of about this many elements: the m copies of a
// block of rows are contiguous runs of as many elements, so the inner loops
// run over whole blocks (long, vectorized) whatever C is, and the block's
// accumulators stay in L1.
constexpr int64_t kBlockElements = 2048;

int64_t row_grain(int64_t m, int64_t classes) {
  const int64_t per_row = (m + 3) * (classes > 0 ? classes : 1);
  return per_row >= kGrainElements ? 1 : kGrainElements / per_row;
}

int64_t block_rows(int64_t classes) {
  return classes >= kBlockElements ? 1 : kBlockElements / (classes > 0 ? classes : 1);
}

// Calls f(b0, b1) for the blocks of rows of [begin, end), each at most
// block_rows(classes) rows.
template <typename F>
void for_each_block(int64_t begin, int64_t end, int64_t classes, const F& f) {
  const int64_t step = block_rows(classes);
  for (int64_t b0 = begin; b0 < end; b0 += step) {
    f(b0, std::min(end, b0 + step));
  }
}

template <typename T>
inline T sign_of(T value) {
  return (value > T(0) ? T(1) : T(0)) - (value < T(0) ? T(1) : T(0));
}

template <typename scalar_t>
void forward_rows(
    const scalar_t* logits,
    const scalar_t* noisy,
    const int64_t* labels,
    scalar_t* out,
    int64_t batch,
    int64_t classes,
    int64_t m,
    double sigma) {
  using acc_t = typename cpu::OpMath<scalar_t>::type;
  const acc_t scale = static_cast<acc_t>(1.0 / (static_cast<double>(m) * sigma));
  const int64_t copy_stride = batch * classes;
  torch::stable::parallel_for(0, batch, row_grain(m, classes), [&](int64_t begin, int64_t end) {
    std::vector<acc_t> sum(static_cast<size_t>(std::min(end - begin, block_rows(classes)) * classes));
    for_each_block(begin, end, classes, [&](int64_t b0, int64_t b1) {
      const int64_t count = (b1 - b0) * classes;
      const scalar_t* __restrict__ rows = logits + b0 * classes;
      acc_t* __restrict__ acc = sum.data();
      for (int64_t e = 0; e < count; ++e) {
        acc[e] = acc_t(0);
      }
      for (int64_t j = 0; j < m; ++j) {
        const scalar_t* __restrict__ copy = noisy + j * copy_stride + b0 * classes;
        for (int64_t e = 0; e < count; ++e) {
          const acc_t d = static_cast<acc_t>(copy[e]) - static_cast<acc_t>(rows[e]);
          acc[e] += d < acc_t(0) ? -d : d;
        }
      }
      for (int64_t b = b0; b < b1; ++b) {
        const scalar_t* __restrict__ row = logits + b * classes;
        const acc_t* __restrict__ row_acc = acc + (b - b0) * classes;
        scalar_t* __restrict__ dst = out + b * 3 * classes;
        for (int64_t k = 0; k < classes; ++k) {
          dst[k] = row[k];
          dst[classes + k] = scalar_t(0);
          dst[2 * classes + k] = static_cast<scalar_t>(row_acc[k] * scale);
        }
        dst[classes + labels[b]] = scalar_t(1);
      }
    });
  });
}

template <typename scalar_t>
void backward_rows(
    const scalar_t* grad,
    const scalar_t* logits,
    const scalar_t* noisy,
    scalar_t* grad_logits,
    scalar_t* grad_noisy,
    int64_t batch,
    int64_t classes,
    int64_t m,
    double sigma) {
  using acc_t = typename cpu::OpMath<scalar_t>::type;
  const acc_t scale = static_cast<acc_t>(1.0 / (static_cast<double>(m) * sigma));
  const int64_t copy_stride = batch * classes;
  torch::stable::parallel_for(0, batch, row_grain(m, classes), [&](int64_t begin, int64_t end) {
    const size_t size =
        static_cast<size_t>(std::min(end - begin, block_rows(classes)) * classes);
    std::vector<acc_t> scaled_grad(size);
    std::vector<acc_t> sum(size);
    for_each_block(begin, end, classes, [&](int64_t b0, int64_t b1) {
      const int64_t count = (b1 - b0) * classes;
      const scalar_t* __restrict__ rows = logits + b0 * classes;
      acc_t* __restrict__ gs = scaled_grad.data();
      acc_t* __restrict__ acc = sum.data();
      for (int64_t b = b0; b < b1; ++b) {
        const scalar_t* __restrict__ g = grad + b * 3 * classes + 2 * classes;
        acc_t* __restrict__ row_gs = gs + (b - b0) * classes;
        for (int64_t k = 0; k < classes; ++k) {
          row_gs[k] = static_cast<acc_t>(g[k]) * scale;
        }
      }
      for (int64_t e = 0; e < count; ++e) {
        acc[e] = acc_t(0);
      }
      for (int64_t j = 0; j < m; ++j) {
        const int64_t offset = j * copy_stride + b0 * classes;
        const scalar_t* __restrict__ copy = noisy + offset;
        scalar_t* __restrict__ dst = grad_noisy + offset;
        for (int64_t e = 0; e < count; ++e) {
          const acc_t v =
              sign_of(static_cast<acc_t>(copy[e]) - static_cast<acc_t>(rows[e])) * gs[e];
          dst[e] = static_cast<scalar_t>(v);
          acc[e] += v;
        }
      }
      for (int64_t b = b0; b < b1; ++b) {
        const scalar_t* __restrict__ g = grad + b * 3 * classes;
        const acc_t* __restrict__ row_acc = acc + (b - b0) * classes;
        scalar_t* __restrict__ dst = grad_logits + b * classes;
        for (int64_t k = 0; k < classes; ++k) {
          dst[k] = static_cast<scalar_t>(static_cast<acc_t>(g[k]) - row_acc[k]);
        }
      }
    });
  });
}

} // namespace

Tensor sensitivity_features_cpu(
    const Tensor& logits,
    const Tensor& noisy_logits,
    const Tensor& labels,
    double sigma,
    int64_t num_classes) {
  const int64_t m =
      sensitivity_features::check_arguments(logits, noisy_logits, labels, sigma, num_classes);
  STD_TORCH_CHECK(
      logits.is_cpu(), "sensitivity_features: the CPU kernel got logits on ",
      device_string(logits));
  const Tensor l = dau::ops::contiguous(logits);
  const Tensor n = dau::ops::contiguous(noisy_logits);
  const Tensor y = dau::ops::contiguous(labels);
  const int64_t batch = l.size(0);
  const int64_t classes = l.size(1);
  const int64_t* label = y.const_data_ptr<int64_t>();
  for (int64_t b = 0; b < batch; ++b) {
    STD_TORCH_CHECK(
        label[b] >= 0 && label[b] < classes, "sensitivity_features: label ", label[b],
        " is out of range for ", classes, " classes");
  }
  Tensor out = torch::stable::new_empty(l, {batch, 3 * classes});
  cpu::dispatch_float(l.scalar_type(), "sensitivity_features", [&](auto tag) {
    using scalar_t = typename decltype(tag)::type;
    forward_rows<scalar_t>(
        l.const_data_ptr<scalar_t>(), n.const_data_ptr<scalar_t>(), label,
        out.mutable_data_ptr<scalar_t>(), batch, classes, m, sigma);
  });
  return out;
}

std::tuple<Tensor, Tensor> sensitivity_features_backward_cpu(
    const Tensor& grad, const Tensor& logits, const Tensor& noisy_logits, double sigma) {
  const int64_t m =
      sensitivity_features::check_backward_arguments(grad, logits, noisy_logits, sigma);
  STD_TORCH_CHECK(
      logits.is_cpu(), "sensitivity_features_backward: the CPU kernel got logits on ",
      device_string(logits));
  const Tensor g = dau::ops::contiguous(grad);
  const Tensor l = dau::ops::contiguous(logits);
  const Tensor n = dau::ops::contiguous(noisy_logits);
  const int64_t batch = l.size(0);
  const int64_t classes = l.size(1);
  Tensor grad_logits = torch::stable::new_empty(l, {batch, classes});
  Tensor grad_noisy = torch::stable::new_empty(n, {n.size(0), classes});
  cpu::dispatch_float(l.scalar_type(), "sensitivity_features_backward", [&](auto tag) {
    using scalar_t = typename decltype(tag)::type;
    backward_rows<scalar_t>(
        g.const_data_ptr<scalar_t>(), l.const_data_ptr<scalar_t>(),
        n.const_data_ptr<scalar_t>(), grad_logits.mutable_data_ptr<scalar_t>(),
        grad_noisy.mutable_data_ptr<scalar_t>(), batch, classes, m, sigma);
  });
  return std::make_tuple(grad_logits, grad_noisy);
}

} // namespace dau::ops

STABLE_TORCH_LIBRARY_IMPL(dau, CPU, m) {
  m.impl("sensitivity_features", TORCH_BOX(&dau::ops::sensitivity_features_cpu));
  m.impl(
      "sensitivity_features_backward", TORCH_BOX(&dau::ops::sensitivity_features_backward_cpu));
}
