"""A minimal stand-in for the `onnxruntime` Python package, over the C API
with ctypes.

Why it exists: the baseline benchmark runs the *real* rembg (and pymatting)
Python code, which does `import onnxruntime as ort`, but PyPI's onnxruntime
wheel cannot be installed on this machine.  This package implements the part
of onnxruntime's Python API that rembg uses, on the very same
libonnxruntime.so (ORT 1.29, .deps/onnxruntime) that cutout links, so rembg
and cutout run the same inference library.  Put the directory that contains
this package (bench/onnxruntime_shim) on PYTHONPATH.

Behaviour kept as in onnxruntime's Python binding:
- one process-wide OrtEnv, created on first use with the default logger
  severity (set_default_logger_severity works before that, and after it via
  UpdateEnvWithCustomLogLevel);
- SessionOptions defaults are ORT's defaults; a setter of the C API is called
  only for an attribute the caller changed (rembg sets intra_op_num_threads
  and inter_op_num_threads from OMP_NUM_THREADS, nothing else);
- only the CPU execution provider is registered (it is the only one in this
  build); other requested providers are ignored with a warning, as
  onnxruntime does for providers that are not available;
- run(None, feed) fetches every output, run(names, feed) the named ones, and
  returns numpy arrays (copies), in order.

The library is found at $CUTOUT_ORT (a directory with lib/ and include/), else
at ../../../.deps/onnxruntime relative to this file.  Function slots of the
OrtApi struct are found by parsing the shipped onnxruntime_c_api.h, the way
bench/ort_ctypes.py does.
"""
import ctypes as C
import os
import re
import warnings

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
_ORT_DIR = os.environ.get(
    "CUTOUT_ORT", os.path.normpath(os.path.join(_HERE, "..", "..", "..", ".deps", "onnxruntime"))
)

_vp = C.c_void_p


def _parse_slots(header):
    src = open(header).read()
    src = re.sub(r"/\*.*?\*/", "", src, flags=re.S)
    src = re.sub(r"//[^\n]*", "", src)
    body = src[src.index("struct OrtApi {"):]
    depth = 0
    for i, ch in enumerate(body):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                body = body[:i]
                break
    names = []
    for m in re.finditer(r"ORT_API2_STATUS\(\s*(\w+)|ORT_CLASS_RELEASE2?\(\s*(\w+)\s*\)|"
                         r"ORT_API_T\(\s*[^,]+,\s*(\w+)|ORT_API_CALL\s*\*\s*(\w+)\s*\)", body):
        if m.group(1):
            names.append(m.group(1))
        elif m.group(2):
            names.append("Release" + m.group(2))
        elif m.group(3):
            names.append(m.group(3))
        else:
            names.append(m.group(4))
    return {n: i for i, n in enumerate(names)}


class _Api:
    def __init__(self):
        libdir = os.path.join(_ORT_DIR, "lib")
        so = os.path.join(libdir, "libonnxruntime.so.1")
        if not os.path.exists(so):
            so = os.path.join(libdir, "libonnxruntime.so")
        self.lib = C.CDLL(so)
        self.slot = _parse_slots(os.path.join(_ORT_DIR, "include", "onnxruntime_c_api.h"))
        self.lib.OrtGetApiBase.restype = C.POINTER(_vp * 2)
        base = self.lib.OrtGetApiBase().contents
        get_api = C.CFUNCTYPE(_vp, C.c_uint32)(base[0])
        self.version = C.CFUNCTYPE(C.c_char_p)(base[1])().decode()
        api = get_api(int(self.version.split(".")[1]))
        if not api:
            raise ImportError("onnxruntime shim: GetApi(%s) returned NULL" % self.version)
        self.api = C.cast(api, C.POINTER(_vp))
        self._fns = {}

    def fn(self, name, restype, *argtypes):
        key = (name, restype, argtypes)
        f = self._fns.get(key)
        if f is None:
            f = C.CFUNCTYPE(restype, *argtypes)(self.api[self.slot[name]])
            self._fns[key] = f
        return f

    def call(self, name, *args, argtypes):
        """Call an ORT_API2_STATUS function; raise on a non-NULL OrtStatus*."""
        status = self.fn(name, _vp, *argtypes)(*args)
        if status:
            msg = self.fn("GetErrorMessage", C.c_char_p, _vp)(status).decode(errors="replace")
            code = self.fn("GetErrorCode", C.c_int, _vp)(status)
            self.fn("ReleaseStatus", None, _vp)(status)
            raise RuntimeError("[ONNXRuntimeError] : %d : %s" % (code, msg))

    def release(self, what, ptr):
        if ptr:
            self.fn("Release" + what, None, _vp)(ptr)


_api = _Api()
__version__ = _api.version

_default_log_severity = 2  # onnxruntime's Python default: warning
_env = None


def _get_env():
    global _env
    if _env is None:
        env = _vp()
        _api.call("CreateEnv", _default_log_severity, b"onnxruntime", C.byref(env),
                  argtypes=(C.c_int, C.c_char_p, C.POINTER(_vp)))
        _env = env
    return _env


def set_default_logger_severity(severity):
    """0 verbose, 1 info, 2 warning, 3 error, 4 fatal."""
    global _default_log_severity
    if not 0 <= int(severity) <= 4:
        raise ValueError("Invalid logging severity level %r" % (severity,))
    _default_log_severity = int(severity)
    if _env is not None:
        _api.call("UpdateEnvWithCustomLogLevel", _env, _default_log_severity,
                  argtypes=(_vp, C.c_int))


def get_device():
    return "CPU"


def get_available_providers():
    out = C.POINTER(C.c_char_p)()
    n = C.c_int()
    _api.call("GetAvailableProviders", C.byref(out), C.byref(n),
              argtypes=(C.POINTER(C.POINTER(C.c_char_p)), C.POINTER(C.c_int)))
    names = [out[i].decode() for i in range(n.value)]
    _api.call("ReleaseAvailableProviders", out, n, argtypes=(C.POINTER(C.c_char_p), C.c_int))
    return names


def get_all_providers():
    return get_available_providers()


class GraphOptimizationLevel:
    ORT_DISABLE_ALL = 0
    ORT_ENABLE_BASIC = 1
    ORT_ENABLE_EXTENDED = 2
    ORT_ENABLE_LAYOUT = 3
    ORT_ENABLE_ALL = 99


class ExecutionMode:
    ORT_SEQUENTIAL = 0
    ORT_PARALLEL = 1


class SessionOptions:
    """Attributes with onnxruntime's defaults; only changed ones reach the C API."""

    _DEFAULTS = {
        "intra_op_num_threads": 0,
        "inter_op_num_threads": 0,
        "graph_optimization_level": GraphOptimizationLevel.ORT_ENABLE_ALL,
        "execution_mode": ExecutionMode.ORT_SEQUENTIAL,
        "enable_cpu_mem_arena": True,
        "enable_mem_pattern": True,
        "log_severity_level": -1,
        "optimized_model_filepath": "",
        "enable_profiling": False,
    }

    def __init__(self):
        for k, v in self._DEFAULTS.items():
            object.__setattr__(self, k, v)
        object.__setattr__(self, "_config", {})

    def __setattr__(self, name, value):
        if name not in self._DEFAULTS:
            raise AttributeError("onnxruntime shim: SessionOptions has no attribute %r" % name)
        object.__setattr__(self, name, value)

    def add_session_config_entry(self, key, value):
        self._config[str(key)] = str(value)

    def get_session_config_entry(self, key):
        return self._config[key]

    def _build(self):
        so = _vp()
        _api.call("CreateSessionOptions", C.byref(so), argtypes=(C.POINTER(_vp),))
        d = self._DEFAULTS
        try:
            if self.intra_op_num_threads != d["intra_op_num_threads"]:
                _api.call("SetIntraOpNumThreads", so, int(self.intra_op_num_threads), argtypes=(_vp, C.c_int))
            if self.inter_op_num_threads != d["inter_op_num_threads"]:
                _api.call("SetInterOpNumThreads", so, int(self.inter_op_num_threads), argtypes=(_vp, C.c_int))
            if self.graph_optimization_level != d["graph_optimization_level"]:
                _api.call("SetSessionGraphOptimizationLevel", so, int(self.graph_optimization_level),
                          argtypes=(_vp, C.c_int))
            if self.execution_mode != d["execution_mode"]:
                _api.call("SetSessionExecutionMode", so, int(self.execution_mode), argtypes=(_vp, C.c_int))
            if not self.enable_cpu_mem_arena:
                _api.call("DisableCpuMemArena", so, argtypes=(_vp,))
            if not self.enable_mem_pattern:
                _api.call("DisableMemPattern", so, argtypes=(_vp,))
            if self.log_severity_level != d["log_severity_level"]:
                _api.call("SetSessionLogSeverityLevel", so, int(self.log_severity_level), argtypes=(_vp, C.c_int))
            if self.optimized_model_filepath:
                _api.call("SetOptimizedModelFilePath", so, self.optimized_model_filepath.encode(),
                          argtypes=(_vp, C.c_char_p))
            if self.enable_profiling:
                _api.call("EnableProfiling", so, b"onnxruntime_profile_", argtypes=(_vp, C.c_char_p))
            for k, v in self._config.items():
                _api.call("AddSessionConfigEntry", so, k.encode(), v.encode(), argtypes=(_vp, C.c_char_p, C.c_char_p))
        except Exception:
            _api.release("SessionOptions", so)
            raise
        return so


# ONNXTensorElementDataType <-> numpy
_ONNX_TO_NP = {
    1: np.float32, 2: np.uint8, 3: np.int8, 4: np.uint16, 5: np.int16, 6: np.int32,
    7: np.int64, 9: np.bool_, 10: np.float16, 11: np.float64, 12: np.uint32, 13: np.uint64,
}
_NP_TO_ONNX = {np.dtype(v): k for k, v in _ONNX_TO_NP.items()}
_ONNX_TYPE_NAME = {
    1: "float", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64",
    8: "string", 9: "bool", 10: "float16", 11: "double", 12: "uint32", 13: "uint64",
    16: "bfloat16",
}


class NodeArg:
    def __init__(self, name, type_, shape):
        self.name = name
        self.type = type_
        self.shape = shape

    def __repr__(self):
        return "NodeArg(name=%r, type=%r, shape=%r)" % (self.name, self.type, self.shape)


def _tensor_info(info):
    """(element type, [dims as int / symbolic name / None]) of an OrtTensorTypeAndShapeInfo."""
    et = C.c_int()
    _api.call("GetTensorElementType", info, C.byref(et), argtypes=(_vp, C.POINTER(C.c_int)))
    nd = C.c_size_t()
    _api.call("GetDimensionsCount", info, C.byref(nd), argtypes=(_vp, C.POINTER(C.c_size_t)))
    dims = (C.c_int64 * nd.value)()
    _api.call("GetDimensions", info, dims, nd, argtypes=(_vp, C.POINTER(C.c_int64), C.c_size_t))
    sym = (C.c_char_p * nd.value)()
    _api.call("GetSymbolicDimensions", info, sym, nd, argtypes=(_vp, C.POINTER(C.c_char_p), C.c_size_t))
    shape = []
    for i in range(nd.value):
        if dims[i] >= 0:
            shape.append(int(dims[i]))
        else:
            shape.append(sym[i].decode() if sym[i] else None)
    return et.value, shape


class InferenceSession:
    def __init__(self, path_or_bytes, sess_options=None, providers=None, provider_options=None, **kwargs):
        self._sess = None
        available = get_available_providers()
        self._providers = ["CPUExecutionProvider"]
        for p in providers or []:
            name = p[0] if isinstance(p, (tuple, list)) else p
            if name not in available:
                warnings.warn("Specified provider '%s' is not in available provider names. "
                              "Available providers: '%s'" % (name, ", ".join(available)))
            elif name != "CPUExecutionProvider":
                warnings.warn("onnxruntime shim: provider %s is not supported, using CPU" % name)
        self._sess_options = sess_options if sess_options is not None else SessionOptions()
        env = _get_env()
        so = self._sess_options._build()
        sess = _vp()
        try:
            if isinstance(path_or_bytes, (bytes, bytearray)):
                buf = C.create_string_buffer(bytes(path_or_bytes), len(path_or_bytes))
                _api.call("CreateSessionFromArray", env, buf, len(path_or_bytes), so, C.byref(sess),
                          argtypes=(_vp, _vp, C.c_size_t, _vp, C.POINTER(_vp)))
            else:
                _api.call("CreateSession", env, os.fsencode(str(path_or_bytes)), so, C.byref(sess),
                          argtypes=(_vp, C.c_char_p, _vp, C.POINTER(_vp)))
        finally:
            _api.release("SessionOptions", so)
        self._sess = sess
        self._model_path = path_or_bytes if not isinstance(path_or_bytes, (bytes, bytearray)) else None

        alloc = _vp()
        _api.call("GetAllocatorWithDefaultOptions", C.byref(alloc), argtypes=(C.POINTER(_vp),))
        self._inputs = self._node_args(alloc, "Input")
        self._outputs = self._node_args(alloc, "Output")
        self._mem = _vp()
        _api.call("CreateCpuMemoryInfo", 1, 0, C.byref(self._mem),  # OrtArenaAllocator, OrtMemTypeDefault
                  argtypes=(C.c_int, C.c_int, C.POINTER(_vp)))

    def _node_args(self, alloc, kind):
        n = C.c_size_t()
        _api.call("SessionGet%sCount" % kind, self._sess, C.byref(n), argtypes=(_vp, C.POINTER(C.c_size_t)))
        args = []
        for i in range(n.value):
            p = _vp()
            _api.call("SessionGet%sName" % kind, self._sess, i, alloc, C.byref(p),
                      argtypes=(_vp, C.c_size_t, _vp, C.POINTER(_vp)))
            name = C.string_at(p.value).decode()
            _api.call("AllocatorFree", alloc, p, argtypes=(_vp, _vp))
            ti = _vp()
            _api.call("SessionGet%sTypeInfo" % kind, self._sess, i, C.byref(ti),
                      argtypes=(_vp, C.c_size_t, C.POINTER(_vp)))
            try:
                info = _vp()
                _api.call("CastTypeInfoToTensorInfo", ti, C.byref(info), argtypes=(_vp, C.POINTER(_vp)))
                if info:
                    et, shape = _tensor_info(info)
                    type_ = "tensor(%s)" % _ONNX_TYPE_NAME.get(et, str(et))
                else:
                    type_, shape = "unknown", None
            finally:
                _api.release("TypeInfo", ti)
            args.append(NodeArg(name, type_, shape))
        return args

    def get_inputs(self):
        return list(self._inputs)

    def get_outputs(self):
        return list(self._outputs)

    def get_providers(self):
        return list(self._providers)

    def get_session_options(self):
        return self._sess_options

    def get_modelmeta(self):
        raise NotImplementedError("onnxruntime shim: get_modelmeta")

    def run(self, output_names, input_feed, run_options=None):
        if run_options is not None:
            raise NotImplementedError("onnxruntime shim: run_options")
        if not output_names:
            output_names = [o.name for o in self._outputs]
        in_names, in_vals, keep = [], [], []
        try:
            for name, arr in input_feed.items():
                a = np.ascontiguousarray(arr)
                et = _NP_TO_ONNX.get(a.dtype)
                if et is None:
                    raise TypeError("onnxruntime shim: unsupported input dtype %s for %r" % (a.dtype, name))
                shape = (C.c_int64 * a.ndim)(*a.shape)
                v = _vp()
                _api.call("CreateTensorWithDataAsOrtValue", self._mem, _vp(a.ctypes.data), a.nbytes,
                          shape, a.ndim, et, C.byref(v),
                          argtypes=(_vp, _vp, C.c_size_t, C.POINTER(C.c_int64), C.c_size_t, C.c_int,
                                    C.POINTER(_vp)))
                keep.append(a)
                in_names.append(name.encode())
                in_vals.append(v)
            n_in, n_out = len(in_names), len(output_names)
            outs = (_vp * n_out)()
            _api.call("Run", self._sess, None, (C.c_char_p * n_in)(*in_names), (_vp * n_in)(*in_vals), n_in,
                      (C.c_char_p * n_out)(*[n.encode() for n in output_names]), n_out, outs,
                      argtypes=(_vp, _vp, C.POINTER(C.c_char_p), C.POINTER(_vp), C.c_size_t,
                                C.POINTER(C.c_char_p), C.c_size_t, C.POINTER(_vp)))
            try:
                return [self._to_numpy(outs[i]) for i in range(n_out)]
            finally:
                for i in range(n_out):
                    _api.release("Value", outs[i])
        finally:
            for v in in_vals:
                _api.release("Value", v)

    @staticmethod
    def _to_numpy(value):
        info = _vp()
        _api.call("GetTensorTypeAndShape", value, C.byref(info), argtypes=(_vp, C.POINTER(_vp)))
        try:
            et, shape = _tensor_info(info)
        finally:
            _api.release("TensorTypeAndShapeInfo", info)
        dtype = _ONNX_TO_NP.get(et)
        if dtype is None:
            raise TypeError("onnxruntime shim: unsupported output element type %d" % et)
        out = np.empty(shape, dtype=dtype)
        if out.nbytes:
            data = _vp()
            _api.call("GetTensorMutableData", value, C.byref(data), argtypes=(_vp, C.POINTER(_vp)))
            C.memmove(out.ctypes.data, data, out.nbytes)
        return out

    def __del__(self):
        try:
            if getattr(self, "_mem", None):
                _api.release("MemoryInfo", self._mem)
                self._mem = None
            if getattr(self, "_sess", None):
                _api.release("Session", self._sess)
                self._sess = None
        except Exception:
            pass
