"""Lets torchvision's pure-Python parts (models, transforms) import next to the CPU build of torch.

The torchvision wheel that PyPI serves for Linux (0.28.0, the release for torch 2.13.0) is compiled against the
CUDA build of torch: its operator library `_C.so` needs libtorch_cuda.so, which the pinned CPU torch does not have,
so it does not load, and `import torchvision` then fails with "operator torchvision::nms does not exist" while
registering shape functions for those operators. Those operators (nms, roi_align, deform_conv2d, ...) serve
detection models only. `ensure()` declares their schemas without kernels when, and only when, the compiled library
is missing, so that torchvision (and timm / open_clip, which import it) load; calling one of them raises torch's
"no kernel" error. Import this module before torchvision.
"""
import importlib.util
import os

_SCHEMAS = [
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "deform_conv2d(Tensor input, Tensor weight, Tensor offset, Tensor mask, Tensor bias, SymInt stride_h, "
    "SymInt stride_w, SymInt pad_h, SymInt pad_w, SymInt dilation_h, SymInt dilation_w, SymInt groups, "
    "SymInt offset_groups, bool use_mask) -> Tensor",
    "_deform_conv2d_backward(Tensor grad, Tensor input, Tensor weight, Tensor offset, Tensor mask, Tensor bias, "
    "SymInt stride_h, SymInt stride_w, SymInt pad_h, SymInt pad_w, SymInt dilation_h, SymInt dilation_w, "
    "SymInt groups, SymInt offset_groups, bool use_mask) -> (Tensor, Tensor, Tensor, Tensor, Tensor)",
    "ps_roi_align(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, SymInt pooled_width, "
    "int sampling_ratio) -> (Tensor, Tensor)",
    "_ps_roi_align_backward(Tensor grad, Tensor rois, Tensor channel_mapping, float spatial_scale, "
    "SymInt pooled_height, SymInt pooled_width, int sampling_ratio, SymInt batch_size, SymInt channels, "
    "SymInt height, SymInt width) -> Tensor",
    "ps_roi_pool(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, SymInt pooled_width) "
    "-> (Tensor, Tensor)",
    "_ps_roi_pool_backward(Tensor grad, Tensor rois, Tensor channel_mapping, float spatial_scale, "
    "SymInt pooled_height, SymInt pooled_width, SymInt batch_size, SymInt channels, SymInt height, SymInt width) "
    "-> Tensor",
    "roi_align(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, SymInt pooled_width, "
    "int sampling_ratio, bool aligned) -> Tensor",
    "_roi_align_backward(Tensor grad, Tensor rois, float spatial_scale, SymInt pooled_height, SymInt pooled_width, "
    "SymInt batch_size, SymInt channels, SymInt height, SymInt width, int sampling_ratio, bool aligned) -> Tensor",
    "roi_pool(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, SymInt pooled_width) "
    "-> (Tensor, Tensor)",
    "_roi_pool_backward(Tensor grad, Tensor rois, Tensor argmax, float spatial_scale, SymInt pooled_height, "
    "SymInt pooled_width, SymInt batch_size, SymInt channels, SymInt height, SymInt width) -> Tensor",
]
_lib = None  # kept alive: the declarations vanish with the Library object


def ensure():
    global _lib
    if _lib is not None:
        return
    import torch
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return
    so = os.path.join(list(spec.submodule_search_locations)[0], "_C.so")
    if not os.path.exists(so):
        return
    try:
        torch.ops.load_library(so)
        return  # the compiled operators match this torch: nothing to do
    except (OSError, RuntimeError):
        pass
    _lib = torch.library.Library("torchvision", "DEF")
    for s in _SCHEMAS:
        _lib.define(s)
    import warnings
    warnings.filterwarnings("ignore", message=".*Failed to load image Python extension.*")
    warnings.filterwarnings("ignore", message=".*torchvision.*extension.*")


ensure()
