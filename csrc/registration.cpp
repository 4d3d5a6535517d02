// Every schema of the torch.ops.dau namespace, declared exactly once.
//
// The kernels live in cpu/<op>.cpp and cuda/<op>.cu, each file ending with one
// STABLE_TORCH_LIBRARY_IMPL block for its backend; the fake (meta) kernels are
// registered from Python (dau/ops/_fake.py) and the pure-PyTorch reference of
// every op is dau/ops/reference.py. Only the torch stable ABI is used, so one
// build of libdau_ops.so serves every torch >= 2.10.

#include <torch/csrc/stable/library.h>

STABLE_TORCH_LIBRARY(dau, m) {
  // masked_sgd_: one torch.optim.SGD step, in place, over lists of tensors
  // (weight decay, momentum with dampening, Nesterov, maximize). Entries whose
  // mask is 0 are never updated: their param keeps its exact bits and their
  // momentum buffer is set to 0. `masks` is empty (all dense) or one entry per
  // param (None = dense); `momentum_buffers` is empty or ignored when
  // momentum == 0; `first_step` makes the buffer the gradient itself, as SGD
  // does when a parameter has no buffer yet.
  m.def(
      "masked_sgd_(Tensor(a!)[] params, Tensor[] grads, "
      "Tensor(b!)[] momentum_buffers, Tensor?[] masks, float lr, "
      "float momentum, float dampening, float weight_decay, bool nesterov, "
      "bool maximize, bool first_step) -> ()");
}
