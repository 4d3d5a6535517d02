// Every schema of the torch.ops.dau namespace, declared exactly once.
//
// The kernels live in cpu/<op>.cpp and cuda/<op>.cu, each file ending with one
// STABLE_TORCH_LIBRARY_IMPL block for its backend; the fake (meta) kernels are
// registered from Python (dau/ops/_fake.py), as are the autograd formulas and
// the composite kernel of an op made of others (dau/ops/_autograd.py), and the
// pure-PyTorch reference of every op is dau/ops/reference.py. Only the torch
// stable ABI is used, so one build of libdau_ops.so serves every torch >= 2.10.

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

  // noisy_replicate: [(m+1)*B, *S] = x followed by m copies of x plus
  // sigma * n, n standard normal from the counter-based generator of
  // counter_normal.h (counter offset + flat index of the noise element), so
  // one (seed, offset) gives the same noise on every run and device.
  m.def("noisy_replicate(Tensor x, int m, float sigma, int seed, int offset) -> Tensor");
  // sensitivity_features: [B, 3C] = [logits | one_hot(labels) |
  // mean_j |noisy_logits[j*B+b] - logits[b]| / sigma] (noisy_logits copy-major).
  m.def(
      "sensitivity_features(Tensor logits, Tensor noisy_logits, Tensor labels, "
      "float sigma, int num_classes) -> Tensor");
  // sensitivity_features_backward: (grad_logits, grad_noisy_logits) of
  // sensitivity_features given the gradient of its [B, 3C] output.
  m.def(
      "sensitivity_features_backward(Tensor grad, Tensor logits, Tensor noisy_logits, "
      "float sigma) -> (Tensor, Tensor)");
  // cross_correlation_loss: 0-dim sum_i (C_ii - 1)^2 + w sum_{i!=j} C_ij^2 with
  // C = v^T f / rows over the first rows = min(B_v, B_f) rows, standardized
  // per column ((x - mean) / (unbiased std + eps)); 0 when rows < 2.
  // Composite (dau/ops/_autograd.py): the loss of
  // cross_correlation_loss_forward, which carries the autograd.
  m.def(
      "cross_correlation_loss(Tensor val_features, Tensor forget_features, "
      "float offdiag_weight, float eps) -> Tensor");
  // cross_correlation_loss_forward: the loss and what its backward reuses,
  // all in the compute dtype (float64 for float64 features, else float32):
  // v [rows, D_v] and f [rows, D_f] standardized, stats [2 D_v + 2 D_f + K]
  // (per column of v, then of f: 1 / (std + eps) and 1 / ((rows - 1) std),
  // 0 for std = 0; then d_i = (v^T f)_ii, i < K = min(D_v, D_f)), and the
  // products: a = v^T f [D_v, D_f] with b empty [0, 0] when
  // 3 D_v D_f <= 2 rows (D_v + D_f), else the Gram matrices a = v v^T and
  // b = f f^T [rows, rows].
  m.def(
      "cross_correlation_loss_forward(Tensor val_features, Tensor forget_features, "
      "float offdiag_weight, float eps) -> (Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)");
  // cross_correlation_loss_backward: (grad_val_features [val_rows, D_v],
  // grad_forget_features [forget_rows, D_f], of grad's dtype) given the
  // gradient of the 0-dim loss and v, f, stats, a, b of
  // cross_correlation_loss_forward.
  m.def(
      "cross_correlation_loss_backward(Tensor grad, Tensor v, Tensor f, Tensor stats, "
      "Tensor a, Tensor b, int val_rows, int forget_rows, float offdiag_weight) "
      "-> (Tensor, Tensor)");
}
