"""A minimal ONNX Runtime binding over the C API with ctypes, for the
rembg-equivalent baseline (bench/rembg_equiv.py): PyPI's onnxruntime wheel
cannot be installed here, so this drives the very same libonnxruntime.so
that cutout uses, with ORT's default session options, as rembg's
`ort.InferenceSession(path)` does.  Function slots are found by parsing
the OrtApi struct in the shipped header."""
import ctypes as C
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ORT = os.environ.get("CUTOUT_ORT", os.path.join(HERE, "..", ".deps", "onnxruntime"))


def _slots(header):
    """Function slots of the OrtApi struct, by name: the shim's parser (one
    parser for both; it also counts the ORT_API_T entries)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "_ort_shim", os.path.join(HERE, "onnxruntime_shim", "onnxruntime", "__init__.py"))
    shim = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(shim)
    return shim._parse_slots(header)


class Ort:
    def __init__(self):
        self.lib = C.CDLL(os.path.join(ORT, "lib", "libonnxruntime.so.1"))
        self.slot = _slots(os.path.join(ORT, "include", "onnxruntime_c_api.h"))
        self.lib.OrtGetApiBase.restype = C.POINTER(C.c_void_p * 2)
        base = self.lib.OrtGetApiBase().contents
        get_api = C.CFUNCTYPE(C.c_void_p, C.c_uint32)(base[0])
        ver = C.CFUNCTYPE(C.c_char_p)(base[1])
        self.version = ver().decode()
        self.api = C.cast(get_api(int(self.version.split(".")[1])), C.POINTER(C.c_void_p))

    def fn(self, name, *argtypes, restype=C.c_void_p):
        return C.CFUNCTYPE(restype, *argtypes)(self.api[self.slot[name]])

    def check(self, status):
        if status:
            msg = self.fn("GetErrorMessage", C.c_void_p, restype=C.c_char_p)(status)
            raise RuntimeError(msg.decode())


class InferenceSession:
    """rembg's use: InferenceSession(path, sess_options), get_inputs()[0].name,
    run(None, {name: x})[0] (rembg fetches every output)."""

    def __init__(self, path, intra=0, inter=0):
        o = self.o = Ort()
        vp = C.c_void_p
        self.env, so, self.sess = vp(), vp(), vp()
        o.check(o.fn("CreateEnv", C.c_int, C.c_char_p, C.POINTER(vp))(3, b"rembg", C.byref(self.env)))
        o.check(o.fn("CreateSessionOptions", C.POINTER(vp))(C.byref(so)))
        if intra:
            o.check(o.fn("SetIntraOpNumThreads", vp, C.c_int)(so, intra))
        if inter:
            o.check(o.fn("SetInterOpNumThreads", vp, C.c_int)(so, inter))
        o.check(o.fn("CreateSession", vp, C.c_char_p, vp, C.POINTER(vp))(
            self.env, path.encode(), so, C.byref(self.sess)))
        alloc = vp()
        o.check(o.fn("GetAllocatorWithDefaultOptions", C.POINTER(vp))(C.byref(alloc)))
        n = C.c_size_t()
        o.check(o.fn("SessionGetOutputCount", vp, C.POINTER(C.c_size_t))(self.sess, C.byref(n)))
        self.out_names = []
        for i in range(n.value):
            s = C.c_char_p()
            o.check(o.fn("SessionGetOutputName", vp, C.c_size_t, vp, C.POINTER(C.c_char_p))(
                self.sess, i, alloc, C.byref(s)))
            self.out_names.append(s.value)
        s = C.c_char_p()
        o.check(o.fn("SessionGetInputName", vp, C.c_size_t, vp, C.POINTER(C.c_char_p))(
            self.sess, 0, alloc, C.byref(s)))
        self.in_name = s.value
        self.mem = vp()
        o.check(o.fn("CreateCpuMemoryInfo", C.c_int, C.c_int, C.POINTER(vp))(1, 0, C.byref(self.mem)))

    def run(self, x):
        o, vp = self.o, C.c_void_p
        x = np.ascontiguousarray(x, dtype=np.float32)
        shape = (C.c_int64 * x.ndim)(*x.shape)
        val = vp()
        o.check(o.fn("CreateTensorWithDataAsOrtValue", vp, vp, C.c_size_t, C.POINTER(C.c_int64),
                     C.c_size_t, C.c_int, C.POINTER(vp))(
            self.mem, x.ctypes.data, x.nbytes, shape, x.ndim, 1, C.byref(val)))
        n = len(self.out_names)
        outs = (vp * n)()
        names = (C.c_char_p * n)(*self.out_names)
        inn = (C.c_char_p * 1)(self.in_name)
        ins = (vp * 1)(val)
        o.check(o.fn("Run", vp, vp, C.POINTER(C.c_char_p), C.POINTER(vp), C.c_size_t,
                     C.POINTER(C.c_char_p), C.c_size_t, C.POINTER(vp))(
            self.sess, None, inn, ins, 1, names, n, outs))
        data = vp()
        o.check(o.fn("GetTensorMutableData", vp, C.POINTER(vp))(outs[0], C.byref(data)))
        shp_info = vp()
        o.check(o.fn("GetTensorTypeAndShape", vp, C.POINTER(vp))(outs[0], C.byref(shp_info)))
        nd = C.c_size_t()
        o.check(o.fn("GetDimensionsCount", vp, C.POINTER(C.c_size_t))(shp_info, C.byref(nd)))
        dims = (C.c_int64 * nd.value)()
        o.check(o.fn("GetDimensions", vp, C.POINTER(C.c_int64), C.c_size_t)(shp_info, dims, nd.value))
        shape = tuple(dims)
        first = np.ctypeslib.as_array(C.cast(data, C.POINTER(C.c_float)), shape=shape).copy()
        o.fn("ReleaseTensorTypeAndShapeInfo", vp, restype=None)(shp_info)
        for i in range(n):
            o.fn("ReleaseValue", vp, restype=None)(outs[i])
        o.fn("ReleaseValue", vp, restype=None)(val)
        return [first]
