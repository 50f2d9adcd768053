"""XLA custom calls into adla on the CPU, without copies: the handler side of ``adla.jax``.

``jax.pure_callback`` copies every operand into a fresh NumPy array and every result into XLA's
buffer (about 1 ms per 10 MB each way on the 2-core benchmark machine, as much as the Cholesky of
10,000 16x16 matrices). A typed XLA FFI handler is instead given XLA's own buffers: operands are
read in place, and results are written straight into XLA's result buffers where adla's kernels
can allocate them there (see ``_cpu.outputs_into``).

The handler is a ``ctypes`` callback (it needs no compiler and no headers at build time), so this
module spells out the few structures of XLA's FFI C ABI that the call frame passes (API major
version 0): the call frame, the argument and result lists, and buffers, plus the metadata
extension and error creation, each up to the last field adla reads or writes. Every structure
begins with its size (which counts the fields up to a fixed one, so that later versions may add
fields after it), checked before the structure is used.

``import adla`` does not import this module; ``adla.jax`` does.
"""
import ctypes
import itertools
import sys

import numpy as np

from . import _cpu
from . import _memory  # type: ignore[attr-defined]  # compiled, no stubs

_API_MAJOR, _API_MINOR = 0, 1       # the C ABI version these structures follow
_EXTENSION_METADATA = 1
_STAGE_EXECUTE = 3
_BUFFER = 1                         # XLA_FFI_ArgType_BUFFER == XLA_FFI_RetType_BUFFER
_DTYPES = {11: np.dtype(np.float32), 12: np.dtype(np.float64)}
_ERROR_INVALID_ARGUMENT, _ERROR_INTERNAL = 3, 13


def _extent(structure):
    """A structure's size as the C ABI counts it: up to the end of its last field, without the
    padding after it."""
    name, kind = structure._fields_[-1]
    return getattr(structure, name).offset + ctypes.sizeof(kind)


class _Extension(ctypes.Structure):
    pass


_Extension._fields_ = [("struct_size", ctypes.c_size_t), ("type", ctypes.c_int),
                       ("next", ctypes.POINTER(_Extension))]


class _Version(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("extension_start", ctypes.c_void_p),
                ("major", ctypes.c_int), ("minor", ctypes.c_int)]


class _Buffer(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("extension_start", ctypes.c_void_p),
                ("dtype", ctypes.c_int), ("data", ctypes.c_void_p), ("rank", ctypes.c_int64),
                ("dims", ctypes.POINTER(ctypes.c_int64))]


class _BufferList(ctypes.Structure):          # XLA_FFI_Args and XLA_FFI_Rets alike
    _fields_ = [("struct_size", ctypes.c_size_t), ("extension_start", ctypes.c_void_p),
                ("size", ctypes.c_int64), ("types", ctypes.POINTER(ctypes.c_int)),
                ("items", ctypes.POINTER(ctypes.POINTER(_Buffer)))]


class _Attributes(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("extension_start", ctypes.c_void_p),
                ("size", ctypes.c_int64), ("types", ctypes.c_void_p),
                ("names", ctypes.c_void_p), ("attrs", ctypes.c_void_p)]


class _CallFrame(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("extension_start", ctypes.POINTER(_Extension)),
                ("api", ctypes.c_void_p), ("ctx", ctypes.c_void_p), ("stage", ctypes.c_int),
                ("args", _BufferList), ("rets", _BufferList), ("attrs", _Attributes)]


class _Metadata(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("api_version", _Version),
                ("traits", ctypes.c_uint32)]


class _MetadataExtension(ctypes.Structure):
    _fields_ = [("base", _Extension), ("metadata", ctypes.POINTER(_Metadata))]


class _ErrorArgs(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("extension_start", ctypes.c_void_p),
                ("message", ctypes.c_char_p), ("code", ctypes.c_int)]


_ErrorCreate = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.POINTER(_ErrorArgs))


class _Api(ctypes.Structure):                 # its first fields only: error creation is first
    _fields_ = [("struct_size", ctypes.c_size_t), ("extension_start", ctypes.c_void_p),
                ("api_version", _Version), ("internal_api", ctypes.c_void_p),
                ("error_create", _ErrorCreate)]


_Handler = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.POINTER(_CallFrame))


class _ArrayInterface:
    __slots__ = ("__array_interface__",)

    def __init__(self, interface):
        self.__array_interface__ = interface


def _array(buffer, writable):
    """A NumPy view of an XLA buffer (read-only for operands)."""
    b = buffer.contents
    if b.struct_size < _extent(_Buffer):
        raise ValueError(f"XLA buffer structure of {b.struct_size} bytes, expected at least "
                         f"{_extent(_Buffer)}")
    if b.dtype not in _DTYPES:
        raise TypeError(f"XLA buffer of FFI data type {b.dtype}; adla takes float32 and float64")
    dtype = _DTYPES[b.dtype]
    shape = tuple(b.dims[i] for i in range(b.rank))
    if 0 in shape or not b.data:
        return np.empty(shape, dtype)
    return np.asarray(_ArrayInterface({"version": 3, "shape": shape, "typestr": dtype.str,
                                       "data": (b.data, not writable)}))


def _arrays(buffers, writable):
    if buffers.struct_size < _extent(_BufferList):
        raise ValueError(f"XLA argument list of {buffers.struct_size} bytes")
    if any(buffers.types[i] != _BUFFER for i in range(buffers.size)):
        raise TypeError("adla's XLA handlers take buffers only")
    return [_array(buffers.items[i], writable) for i in range(buffers.size)]


def _store(results, destinations):
    """Write each result into its XLA buffer, skipping those adla already computed there. A
    result that lives in another result's buffer is copied aside first, before any is written."""
    sources = []
    for r, d in zip(results, destinations):
        r = np.asarray(r)
        in_place = (r.ctypes.data == d.ctypes.data and r.size == d.size
                    and (r.size <= 1 or r.flags.c_contiguous))
        if in_place:
            sources.append(None)
        elif any(np.may_share_memory(r, other) for other in destinations):
            sources.append(r.copy())
        else:
            sources.append(r)
    for r, d in zip(sources, destinations):
        if r is not None:
            np.copyto(d, r.reshape(d.shape), casting="same_kind")


def _error(frame, code, message):
    api = ctypes.cast(frame.api, ctypes.POINTER(_Api)).contents
    args = _ErrorArgs(_extent(_ErrorArgs), None, message.encode("utf-8", "replace"), code)
    return api.error_create(ctypes.byref(args))


def _describe(frame):
    """Answer XLA's metadata query (the C ABI version these structures follow); whether the call
    was one."""
    extension = frame.extension_start
    while extension:
        if extension.contents.type == _EXTENSION_METADATA:
            metadata = ctypes.cast(extension, ctypes.POINTER(_MetadataExtension)).contents.metadata
            if metadata.contents.struct_size < _extent(_Metadata):
                raise ValueError(f"XLA metadata structure of {metadata.contents.struct_size} "
                                 f"bytes, expected at least {_extent(_Metadata)}")
            metadata.contents.api_version = _Version(_extent(_Version), None,
                                                     _API_MAJOR, _API_MINOR)
            metadata.contents.traits = 0
            return True
        extension = extension.contents.next
    return False


_HUGE_PAGE = 2 << 20
_MADV_HUGEPAGE = 14                 # Linux
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3       # glibc's mallopt parameters
_MMAP_THRESHOLD = 32 << 20          # the largest that glibc's mallopt accepts


def _libc(name, argtypes, glibc=False):
    """A function of the C library on Linux (of glibc only, with ``glibc``), or None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if glibc:
            getattr(libc, "gnu_get_libc_version")
        function = getattr(libc, name)
    except (OSError, AttributeError):
        return None
    function.argtypes = argtypes
    return function


_MADVISE = _libc("madvise", [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int])
_MALLOPT = _libc("mallopt", [ctypes.c_int, ctypes.c_int], glibc=True)
_huge_page_floor = _HUGE_PAGE       # results smaller than this get no huge-page advice


def _keep_freed_results():
    """Ask glibc to keep freed memory for the next call's results. XLA allocates the results of
    every call afresh with malloc; by default glibc maps blocks this large from the operating
    system and hands them back when they are freed (or trims them off the top of its heap), so
    every call faults its results in again, 4 KiB at a time: on the 2-core machine, trsm
    forward+backward of 10,000 16x16 matrices took 5,000-9,700 faults and 14-26 ms a call against
    13.5-16 ms for adla called directly. With blocks up to 32 MiB taken from the heap and up to
    the output cache's limit (``ADLA_CPU_CACHE_MB``, the memory adla may keep) left at its top,
    the next call's results reuse pages the process already has: most calls take no faults (now
    and then one maps a fresh buffer, served from another malloc arena). With the limit at 0,
    or outside glibc, malloc is left alone. Called once, when adla.jax registers its first custom
    call."""
    global _huge_page_floor
    keep = _memory.limit_megabytes() << 20
    if _MALLOPT is None or keep == 0:
        return
    if _MALLOPT(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD) and _MALLOPT(_M_TRIM_THRESHOLD,
                                                                 min(keep, 2**31 - 1)):
        _huge_page_floor = _MMAP_THRESHOLD      # smaller results now stay faulted in


def _ask_huge_pages(arrays):
    """Transparent huge pages for the 2 MiB-aligned parts of large result buffers: those that
    glibc still maps afresh for every call (see _keep_freed_results) fault in one page per 2 MiB
    instead of per 4 KiB. Where huge pages are off this is a no-op."""
    if _MADVISE is None:
        return
    for a in arrays:
        if a.nbytes < _huge_page_floor:
            continue
        first = -(-a.ctypes.data // _HUGE_PAGE) * _HUGE_PAGE
        last = (a.ctypes.data + a.nbytes) // _HUGE_PAGE * _HUGE_PAGE
        if last > first:
            _MADVISE(first, last - first, _MADV_HUGEPAGE)


def _handler(run):
    """The C handler that calls ``run(*operands)`` on views of XLA's operand buffers and stores
    the tuple it returns in XLA's result buffers, with adla's outputs allocated there."""
    def handle(frame_pointer):
        frame = frame_pointer.contents
        try:
            if _describe(frame) or frame.stage != _STAGE_EXECUTE:
                return None
            if frame.struct_size < _extent(_CallFrame):
                return _error(frame, _ERROR_INVALID_ARGUMENT,
                              f"adla: XLA call frame of {frame.struct_size} bytes, expected at "
                              f"least {_extent(_CallFrame)}")
            operands = _arrays(frame.args, writable=False)
            destinations = _arrays(frame.rets, writable=True)
            _ask_huge_pages(destinations)
            with _cpu.outputs_into(destinations):
                results = run(*operands)
            _store(results, destinations)
            return None
        except BaseException as error:      # an exception must not unwind through XLA's frames
            return _error(frame, _ERROR_INTERNAL, f"adla: {type(error).__name__}: {error}")
    return _Handler(handle)


_handlers: list = []            # registered for good: XLA keeps their addresses
_serial = itertools.count()


def target(run):
    """Register ``run`` as an XLA CPU custom call and return its target name for
    ``jax.ffi.ffi_call``. ``run`` takes NumPy arrays (views of XLA's operands) and returns a
    tuple of arrays, one per result."""
    import jax
    if not _handlers:
        _keep_freed_results()
    handler = _handler(run)
    name = f"adla_{next(_serial)}"
    jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(handler), platform="cpu")
    _handlers.append(handler)
    return name
