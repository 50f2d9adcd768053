# cython: language_level=3, boundscheck=False, wraparound=False
"""Memory for the CPU backend's outputs: freed blocks kept for the next request of the same size.

Writing a fresh multi-megabyte array first costs the operating system's page faults (on the
2-core benchmark machine, 3-4 ms to fault in 20 MB against 1 ms to write it), and glibc hands large
freed blocks back to the system, so a loop calling an operator on the same shapes paid that for
every output of every call. Outputs of at least ``SMALLEST`` bytes are therefore allocated through
a NumPy memory handler (NEP 49) that keeps freed blocks, most recent first, up to a limit
(``ADLA_CPU_CACHE_MB`` in the environment, default 256; 0 turns the cache off), and hands a kept
block back for a request of exactly its size. The arrays are ordinary NumPy arrays owning their
data; only their memory may come from an earlier, freed output. The kernels' scratch goes through
the same two functions (``cache_handler``, handed to ``_lapack.use_output_cache``).
"""
from cpython.pycapsule cimport PyCapsule_New
from cpython.pythread cimport (PyThread_type_lock, PyThread_allocate_lock, PyThread_acquire_lock,
                               PyThread_release_lock, WAIT_LOCK)
from libc.stdlib cimport malloc, calloc, realloc, free
from posix.stdlib cimport posix_memalign
from libc.string cimport memcpy
cimport numpy as cnp

import os

import numpy as np

cnp.import_array()

cdef extern from "numpy/arrayobject.h":
    ctypedef struct PyDataMemAllocator:
        void* ctx
        void* (*malloc)(void* ctx, size_t size) noexcept nogil
        void* (*calloc)(void* ctx, size_t count, size_t item) noexcept nogil
        void* (*realloc)(void* ctx, void* p, size_t size) noexcept nogil
        void (*free)(void* ctx, void* p, size_t size) noexcept nogil
    ctypedef struct PyDataMem_Handler:
        char name[127]
        unsigned char version
        PyDataMemAllocator allocator
    object PyDataMem_SetHandler(object handler)

cdef enum:
    SLOTS = 64                  # blocks kept at most
    SMALLEST = 1 << 20          # smaller blocks come from malloc's heap without page faults
    ALIGNMENT = 64              # larger ones start on a cache line (the kernels' non-temporal
                                # stores need it: _fma_product.h)

cdef void* kept[SLOTS]         # oldest first
cdef size_t kept_size[SLOTS]
cdef int kept_count = 0
cdef size_t kept_bytes = 0
cdef size_t limit = 0
cdef PyThread_type_lock lock = PyThread_allocate_lock()


cdef void forget(int i) noexcept nogil:
    global kept_count, kept_bytes
    cdef int j
    kept_bytes -= kept_size[i]
    kept_count -= 1
    for j in range(i, kept_count):
        kept[j], kept_size[j] = kept[j + 1], kept_size[j + 1]


cdef void* take(void* ctx, size_t size) noexcept nogil:
    cdef void* p = NULL
    if size >= SMALLEST:
        PyThread_acquire_lock(lock, WAIT_LOCK)
        for i in range(kept_count - 1, -1, -1):
            if kept_size[i] == size:
                p = kept[i]
                forget(i)
                break
        PyThread_release_lock(lock)
        if p == NULL and posix_memalign(&p, ALIGNMENT, size) != 0:
            p = NULL
        return p
    return malloc(size)


cdef void* take_zeroed(void* ctx, size_t count, size_t item) noexcept nogil:
    return calloc(count, item)      # fresh pages are zero already: nothing to gain from a kept block


cdef void* resize(void* ctx, void* p, size_t size) noexcept nogil:
    return realloc(p, size)


cdef void give_back(void* ctx, void* p, size_t size) noexcept nogil:
    global kept_count, kept_bytes
    if p == NULL:
        return
    if size < SMALLEST or size > limit:
        free(p)
        return
    PyThread_acquire_lock(lock, WAIT_LOCK)
    while kept_count == SLOTS or kept_bytes + size > limit:
        free(kept[0])
        forget(0)
    kept[kept_count], kept_size[kept_count] = p, size
    kept_count += 1
    kept_bytes += size
    PyThread_release_lock(lock)


cdef PyDataMem_Handler handler
memcpy(handler.name, b"adla_output_cache\0", 18)
handler.version = 1
handler.allocator.ctx = NULL
handler.allocator.malloc = take
handler.allocator.calloc = take_zeroed
handler.allocator.realloc = resize
handler.allocator.free = give_back
cdef object handler_capsule = PyCapsule_New(&handler, "mem_handler", NULL)
cache_handler = handler_capsule     # for the kernels' scratch (_lapack.use_output_cache)


def set_limit(megabytes):
    """Keep at most ``megabytes`` MiB of freed outputs (0: keep none, free what is kept)."""
    global limit
    PyThread_acquire_lock(lock, WAIT_LOCK)
    limit = <size_t>max(0, int(megabytes)) << 20
    while kept_count and kept_bytes > limit:
        free(kept[0])
        forget(0)
    PyThread_release_lock(lock)


def limit_megabytes():
    """The most MiB of freed outputs kept (``ADLA_CPU_CACHE_MB``, or ``set_limit``'s)."""
    return limit >> 20


def kept_megabytes():
    """MiB of freed outputs held for reuse now."""
    return kept_bytes / float(1 << 20)


def empty(shape, dtype):
    """``numpy.empty(shape, dtype)`` whose memory comes from (and returns to) the cache."""
    cdef Py_ssize_t size = np.dtype(dtype).itemsize
    for extent in shape:
        size *= extent
    if limit == 0 or size < SMALLEST:      # malloc's either way: skip switching handlers
        return np.empty(shape, dtype)
    previous = PyDataMem_SetHandler(handler_capsule)
    try:
        return np.empty(shape, dtype)
    finally:
        PyDataMem_SetHandler(previous)


def _new_lock_after_fork():
    # A fork while another thread held the lock (inside an allocation) would leave it held in
    # the child for good; the child starts with a fresh one (its kept blocks stay valid).
    global lock
    lock = PyThread_allocate_lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_lock_after_fork)


def _limit_from_environment():
    text = os.environ.get("ADLA_CPU_CACHE_MB", "256")
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"ADLA_CPU_CACHE_MB must be a number of MiB, not {text!r}") from None


set_limit(_limit_from_environment())
