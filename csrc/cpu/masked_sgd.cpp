// CPU kernel of torch.ops.dau.masked_sgd_ (schema in ../registration.cpp).
//
// One fused pass per tensor reads param, grad, momentum buffer and mask once
// and writes param and buffer once. The inner loop is specialised at compile
// time on the mask kind, the momentum phase, Nesterov and weight decay, so it
// has no branches left; the mask selects by bits (exact, branch-free), and
// the float32/float64 loops vectorize.
// Large tensors are split into chunks over torch's intra-op thread pool.
//
// Layouts: when a tensor and its grad / buffer / mask share the same dense
// layout (contiguous, channels-last, any permutation of dims without gaps),
// the kernel walks their memory directly. Anything else (a transposed grad, a
// strided view of a param, an expanded mask) goes through contiguous copies,
// and param and buffer are copied back, so the caller's tensors are updated
// in place whatever their strides.

#include "../masked_sgd_common.h"
#include "cpu_common.h"

#include <torch/csrc/stable/library.h>
#include <torch/csrc/stable/ops.h>
#include <torch/csrc/stable/tensor.h>
#include <torch/headeronly/core/ScalarType.h>
#include <torch/headeronly/util/BFloat16.h>
#include <torch/headeronly/util/Exception.h>
#include <torch/headeronly/util/Half.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <vector>

namespace dau::ops {

using torch::headeronly::ScalarType;
using torch::stable::Tensor;

namespace {

using masked_sgd::device_string;

// Elements per chunk handed to one thread: small tensors run inline, so the
// thread pool is only woken for work that pays for it.
constexpr int64_t kGrainSize = int64_t{1} << 16;

enum class MaskKind { kNone, kByte, kSame };
enum class MomentumKind { kNone, kFirst, kRunning };

struct Hyper {
  double lr;
  double momentum;
  double dampening;
  double weight_decay;
  bool nesterov;
  bool maximize;
};

using cpu::OpMath;

// Unsigned integers as wide as a storage type, for exact bitwise selects.
template <size_t kSize>
struct Bits;
template <>
struct Bits<2> {
  using type = uint16_t;
};
template <>
struct Bits<4> {
  using type = uint32_t;
};
template <>
struct Bits<8> {
  using type = uint64_t;
};

template <typename T>
inline typename Bits<sizeof(T)>::type to_bits(T value) {
  typename Bits<sizeof(T)>::type out;
  std::memcpy(&out, &value, sizeof(T));
  return out;
}

template <typename T>
inline T from_bits(typename Bits<sizeof(T)>::type bits) {
  T out;
  std::memcpy(static_cast<void*>(&out), &bits, sizeof(T));
  return out;
}

using RangeFn = void (*)(
    void* param,
    const void* grad,
    void* buffer,
    const void* mask,
    int64_t begin,
    int64_t end,
    const Hyper& hyper);

// The whole update of elements [begin, end). Every pointer addresses the same
// logical element at the same offset (same dense layout).
template <
    typename scalar_t,
    typename mask_t,
    MaskKind kMask,
    MomentumKind kMomentum,
    bool kNesterov,
    bool kWeightDecay>
void update_range(
    void* param_v,
    const void* grad_v,
    void* buffer_v,
    const void* mask_v,
    int64_t begin,
    int64_t end,
    const Hyper& hyper) {
  using acc_t = typename OpMath<scalar_t>::type;
  using bits_t = typename Bits<sizeof(scalar_t)>::type;
  scalar_t* __restrict__ param = static_cast<scalar_t*>(param_v);
  const scalar_t* __restrict__ grad = static_cast<const scalar_t*>(grad_v);
  scalar_t* __restrict__ buffer = static_cast<scalar_t*>(buffer_v);
  const mask_t* __restrict__ mask = static_cast<const mask_t*>(mask_v);

  const acc_t lr = static_cast<acc_t>(hyper.lr);
  const acc_t momentum = static_cast<acc_t>(hyper.momentum);
  const acc_t keep = static_cast<acc_t>(1.0 - hyper.dampening);
  const acc_t weight_decay = static_cast<acc_t>(hyper.weight_decay);
  // Multiplying by +-1 is exact, so this is -grad or grad bit for bit.
  const acc_t sign = hyper.maximize ? acc_t(-1) : acc_t(1);

  for (int64_t i = begin; i < end; ++i) {
    // Every operand is loaded and every result stored unconditionally; the
    // mask only selects between values, so the loop has no branches and
    // vectorizes.
    const scalar_t old_param = param[i];
    const acc_t p = static_cast<acc_t>(old_param);
    acc_t g = sign * static_cast<acc_t>(grad[i]);
    if constexpr (kWeightDecay) {
      g = g + weight_decay * p;
    }
    acc_t b = acc_t(0);
    if constexpr (kMomentum == MomentumKind::kFirst) {
      b = g;
    } else if constexpr (kMomentum == MomentumKind::kRunning) {
      b = momentum * static_cast<acc_t>(buffer[i]) + keep * g;
    }
    if constexpr (kMomentum != MomentumKind::kNone) {
      if constexpr (kNesterov) {
        g = g + momentum * b;
      } else {
        g = b;
      }
    }
    const scalar_t updated = static_cast<scalar_t>(p - lr * g);
    if constexpr (kMask == MaskKind::kNone) {
      param[i] = updated;
      if constexpr (kMomentum != MomentumKind::kNone) {
        buffer[i] = static_cast<scalar_t>(b);
      }
    } else {
      // Select by bits: all ones where the mask is non-zero, else all zeros.
      const bits_t select = bits_t(0) - static_cast<bits_t>(mask[i] != mask_t(0));
      param[i] = from_bits<scalar_t>(
          (to_bits(updated) & select) | (to_bits(old_param) & static_cast<bits_t>(~select)));
      if constexpr (kMomentum != MomentumKind::kNone) {
        // +0.0 where masked.
        buffer[i] = from_bits<scalar_t>(to_bits(static_cast<scalar_t>(b)) & select);
      }
    }
  }
}

template <typename scalar_t, typename mask_t, MaskKind kMask, MomentumKind kMomentum>
RangeFn pick_flags(bool nesterov, bool weight_decay) {
  if (nesterov) {
    return weight_decay ? &update_range<scalar_t, mask_t, kMask, kMomentum, true, true>
                        : &update_range<scalar_t, mask_t, kMask, kMomentum, true, false>;
  }
  return weight_decay ? &update_range<scalar_t, mask_t, kMask, kMomentum, false, true>
                      : &update_range<scalar_t, mask_t, kMask, kMomentum, false, false>;
}

template <typename scalar_t, typename mask_t, MaskKind kMask>
RangeFn pick_momentum(MomentumKind kind, bool nesterov, bool weight_decay) {
  switch (kind) {
    case MomentumKind::kNone:
      // Nesterov is meaningless without momentum; validated earlier.
      return pick_flags<scalar_t, mask_t, kMask, MomentumKind::kNone>(false, weight_decay);
    case MomentumKind::kFirst:
      return pick_flags<scalar_t, mask_t, kMask, MomentumKind::kFirst>(nesterov, weight_decay);
    case MomentumKind::kRunning:
      return pick_flags<scalar_t, mask_t, kMask, MomentumKind::kRunning>(nesterov, weight_decay);
  }
  return nullptr;
}

template <typename scalar_t>
RangeFn pick_mask(MaskKind mask, MomentumKind kind, bool nesterov, bool weight_decay) {
  switch (mask) {
    case MaskKind::kNone:
      return pick_momentum<scalar_t, uint8_t, MaskKind::kNone>(kind, nesterov, weight_decay);
    case MaskKind::kByte:
      return pick_momentum<scalar_t, uint8_t, MaskKind::kByte>(kind, nesterov, weight_decay);
    case MaskKind::kSame:
      return pick_momentum<scalar_t, scalar_t, MaskKind::kSame>(kind, nesterov, weight_decay);
  }
  return nullptr;
}

RangeFn pick_kernel(
    ScalarType dtype,
    MaskKind mask,
    MomentumKind kind,
    bool nesterov,
    bool weight_decay) {
  switch (dtype) {
    case ScalarType::Float:
      return pick_mask<float>(mask, kind, nesterov, weight_decay);
    case ScalarType::Double:
      return pick_mask<double>(mask, kind, nesterov, weight_decay);
    case ScalarType::Half:
      return pick_mask<torch::headeronly::Half>(mask, kind, nesterov, weight_decay);
    case ScalarType::BFloat16:
      return pick_mask<torch::headeronly::BFloat16>(mask, kind, nesterov, weight_decay);
    default:
      break;
  }
  STD_TORCH_CHECK(false, "masked_sgd_: unsupported dtype ", torch::headeronly::toString(dtype));
  return nullptr;
}

MaskKind mask_kind_of(const std::optional<Tensor>& mask) {
  if (!mask.has_value()) {
    return MaskKind::kNone;
  }
  const ScalarType dtype = mask->scalar_type();
  if (dtype == ScalarType::Bool || dtype == ScalarType::Byte) {
    return MaskKind::kByte;
  }
  return MaskKind::kSame;
}

// --------------------------------------------------------------- kernel -----

void step_one(
    Tensor& param,
    const Tensor& grad,
    Tensor* buffer,
    const std::optional<Tensor>& mask,
    MomentumKind kind,
    const Hyper& hyper) {
  const int64_t n = param.numel();
  if (n == 0) {
    return;
  }
  const ScalarType dtype = param.scalar_type();
  const MaskKind mkind = mask_kind_of(mask);
  const RangeFn fn =
      pick_kernel(dtype, mkind, kind, hyper.nesterov, hyper.weight_decay != 0.0);

  // Fast path: all operands share one dense layout, so offset k of each
  // pointer is the same logical element.
  const bool direct = masked_sgd::shares_dense_layout(
      param, grad, buffer, mask.has_value() ? &*mask : nullptr);

  // Off the fast path every operand is made contiguous (a no-op for those
  // that already are); `param` stands in for operands that are absent.
  const auto work = [direct](const Tensor& t) {
    return direct ? t : torch::stable::contiguous(t);
  };
  Tensor work_param = work(param);
  const Tensor work_grad = work(grad);
  Tensor work_buffer = buffer != nullptr ? work(*buffer) : param;
  const Tensor work_mask = mask.has_value() ? work(*mask) : param;

  void* p = work_param.mutable_data_ptr();
  const void* g = work_grad.const_data_ptr();
  void* b = buffer != nullptr ? work_buffer.mutable_data_ptr() : nullptr;
  const void* m = mask.has_value() ? work_mask.const_data_ptr() : nullptr;

  torch::stable::parallel_for(0, n, kGrainSize, [&](int64_t begin, int64_t end) {
    fn(p, g, b, m, begin, end, hyper);
  });

  if (!direct) {
    // contiguous() returns the tensor itself when it already is contiguous;
    // only a real copy has to be written back.
    if (work_param.data_ptr() != param.data_ptr()) {
      torch::stable::copy_(param, work_param);
    }
    if (buffer != nullptr && work_buffer.data_ptr() != buffer->data_ptr()) {
      torch::stable::copy_(*buffer, work_buffer);
    }
  }
}

} // namespace

void masked_sgd_cpu(
    std::vector<Tensor> params,
    std::vector<Tensor> grads,
    std::vector<Tensor> momentum_buffers,
    std::vector<std::optional<Tensor>> masks,
    double lr,
    double momentum,
    double dampening,
    double weight_decay,
    bool nesterov,
    bool maximize,
    bool first_step) {
  // The CPU kernel checks the device of the params after all other checks.
  masked_sgd::check_arguments(
      params, grads, momentum_buffers, masks, momentum, dampening, nesterov,
      [](const std::vector<Tensor>&, size_t) {});
  for (size_t i = 0; i < params.size(); ++i) {
    STD_TORCH_CHECK(
        params[i].is_cpu(), "masked_sgd_: the CPU kernel got params[", i, "] on ",
        device_string(params[i]), "; all tensors of one call must be on one device");
  }
  const Hyper hyper{lr, momentum, dampening, weight_decay, nesterov, maximize};
  const MomentumKind kind = momentum == 0.0
      ? MomentumKind::kNone
      : (first_step ? MomentumKind::kFirst : MomentumKind::kRunning);
  for (size_t i = 0; i < params.size(); ++i) {
    Tensor* buffer = kind == MomentumKind::kNone ? nullptr : &momentum_buffers[i];
    const std::optional<Tensor> mask =
        masks.empty() ? std::optional<Tensor>() : masks[i];
    step_one(params[i], grads[i], buffer, mask, kind, hyper);
  }
}

} // namespace dau::ops

STABLE_TORCH_LIBRARY_IMPL(dau, CPU, m) {
  m.impl("masked_sgd_", TORCH_BOX(&dau::ops::masked_sgd_cpu));
}
