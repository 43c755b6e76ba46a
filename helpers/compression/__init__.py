"""Compression: pruning, int8 quantization, distillation, honest measurements, a YAML workflow.

Every function that compresses works on a **copy**: the baseline you pass in is never changed
(the source document compresses ``self.model`` in place and so destroys its own baseline).
One module per concern:

* :mod:`~helpers.compression.pruning`: :func:`prune_global_l1` keeps the masks
  (``weight = weight_orig * weight_mask``), so an ordinary optimizer fine-tunes the surviving weights
  while the pruned ones stay exactly zero; :func:`make_permanent` folds them (for export only);
  :func:`count_nonzero` and :func:`sparsity` count what pruning really removed;
  :func:`prune_channels` is structured pruning: whole channels removed, so the model is faster.
* :mod:`~helpers.compression.quantization`: :func:`quantize_static` is real int8 for convolutions
  *and* ``fc`` (eager static quantization); ``quantize_dynamic`` and torchao's ``quantize_`` only
  touch ``Linear`` layers; :func:`quantization_engine` picks the platform's int8 engine (``x86``,
  ``qnnpack`` on ARM). An int8 model has no trainable float weights: recovery is
  quantization-aware training, :func:`prepare_qat` then :func:`convert_qat`. int8 kernels run on
  the CPU only. :func:`affine_qparams`, :func:`per_channel_qparams`, :func:`quantize_affine` and
  :func:`dequantize_affine` spell out the int8 arithmetic (scale, zero point) the kernels use.
* :mod:`~helpers.compression.measure`: :func:`serialized_size` (zlib-compressed state dict, so
  zeros show up), :func:`latency_ms`, :func:`multiply_adds`, :func:`measure`, :func:`format_table`.
* :mod:`~helpers.compression.config` and :mod:`~helpers.compression.workflow`: :func:`load_config`
  (YAML -> validated dataclasses), :func:`run_workflow` and :func:`log_to_file`.
"""
from helpers.compression.config import (METHODS, ConfigError, Experiment, Finetuning, Step, WorkflowConfig,
                                        cap_epochs, load_config)
from helpers.compression.measure import (accuracy, compare_latency, format_table, latency_ms, measure, multiply_adds,
                                         print_table, serialized_size)
from helpers.compression.pruning import (PRUNABLE, clone, count_nonzero, is_pruned, layer_sparsity, make_permanent,
                                         prunable, prune_channels, prune_global_l1, sparsity)
from helpers.compression.quantization import (BACKEND, QuantReady, affine_qparams, convert_qat, dequantize_affine,
                                              per_channel_qparams, prepare_qat, quantization_engine,
                                              quantize_affine, quantize_dynamic, quantize_static,
                                              quantized_layers)
from helpers.compression.workflow import apply_step, log_to_file, logger, run_workflow

__all__ = ["METHODS", "ConfigError", "Experiment", "Finetuning", "Step", "WorkflowConfig", "load_config",
           "accuracy", "format_table", "latency_ms", "measure", "print_table", "serialized_size",
           "PRUNABLE", "clone", "count_nonzero", "is_pruned", "make_permanent", "prunable", "prune_global_l1",
           "sparsity", "BACKEND", "QuantReady", "convert_qat", "prepare_qat", "quantization_engine",
           "quantize_dynamic", "quantize_static", "quantized_layers", "apply_step", "logger", "run_workflow",
           "cap_epochs", "compare_latency", "layer_sparsity", "prune_channels", "affine_qparams",
           "per_channel_qparams", "quantize_affine", "dequantize_affine", "log_to_file", "multiply_adds"]
