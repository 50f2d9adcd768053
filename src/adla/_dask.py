"""Operators on dask arrays: one lazy task per block of the batch, each running adla's NumPy (or
CuPy) operator on its chunk. Read from the operator's spec, so no operator is restated here.

How a call becomes a graph:

- the operands are bound by name; the spec says how many trailing axes of each are core axes.
  Core axes must lie in one chunk each; batch axes are chunked freely and broadcast as NumPy
  broadcasts them. Shape and dtype errors are raised now, by calling the operator on stand-ins
  with an empty batch (which also gives every output's dtype and core shape);
- one ``blockwise`` task per block of the broadcast batch runs the operator on that block and
  returns its outputs as a tuple, and one ``map_blocks`` per output picks its array;
- a gradient for an operand that was broadcast along batch axes is summed within each block
  by the operator itself and across blocks by a dask sum;
- a numerical failure raises ``LinAlgError`` when computed, its indices made global by adding
  the block's offset along every batch axis (each block gets the batch positions it covers as
  small ``arange`` blocks).

dask is imported only here, and this module only when a dask array reaches an operator.
"""
import multiprocessing
import operator
import threading

import numpy as np
import dask.array as da
from dask.array.core import unify_chunks

from ._adapters import bind, flat, sample_outputs
from ._frontend import LinAlgError
from . import _cpu


def is_dask(x):
    return type(x).__module__.startswith("dask.")


def call(fn, args, kwargs):
    """Run public operator ``fn`` (a forward, a backward or a jvp) lazily on dask operands."""
    bound = bind(fn, args, kwargs)
    fname, spec, backward = bound.fname, bound.spec, bound.backward
    names, operands, options = list(bound.operands), bound.operands, bound.options
    cotangents, tangents = set(bound.cotangents), set(bound.tangents)
    core = bound.core

    arrays = {}
    for name, x in operands.items():
        if x is None:
            continue
        if not is_dask(x) and not hasattr(x, "shape"):
            x = np.asarray(x)
        arrays[name] = x
        if is_dask(x):
            _check_core_chunks(fname, name, x, min(core[name], x.ndim))

    def batch_of(name):
        x = arrays[name]
        return x.shape[:max(x.ndim - core[name], 0)]

    primals = [n for n in arrays if n not in cotangents | tangents]
    try:
        batch = tuple(np.broadcast_shapes(*[batch_of(n) for n in primals]))
    except ValueError:
        shapes = ", ".join(f"{n} {arrays[n].shape}" for n in primals)
        raise ValueError(f"adla.{fname}: batch axes do not broadcast: {shapes}") from None
    nb = len(batch)
    for name in cotangents & set(arrays):
        b = batch_of(name)
        if len(b) > nb or any(s not in (1, t) for s, t in zip(b[::-1], batch[::-1])):
            raise ValueError(f"adla.{fname}: cotangent {name} of shape {arrays[name].shape} "
                             f"does not broadcast to the batch shape {batch} of the primals")
    for name in tangents & set(arrays):       # its primal's shape, not the whole batch
        shape, primal_shape = arrays[name].shape, arrays[name[1:]].shape
        if len(shape) > len(primal_shape) or any(
                s not in (1, t) for s, t in zip(shape[::-1], primal_shape[::-1])):
            raise ValueError(f"adla.{fname}: tangent {name} has shape {shape}, which does not "
                             f"broadcast to the shape {primal_shape} of its operand {name[1:]}")

    # Shape and dtype errors now, and the outputs' dtypes and core shapes, from stand-ins.
    sample = sample_outputs(fn, {name: None if x is None else (_core_shape(arrays[name],
                                                                         core[name]), x.dtype)
                                 for name, x in operands.items()},
                            options, _array_module(arrays))

    # blockwise: batch axes share letters (right-aligned), every core axis gets its own.
    batch_letters = tuple(f"b{i}" for i in range(nb))
    pairs = []
    for name in names:
        x = arrays.get(name)
        if x is None:
            pairs += [None, None]
            continue
        nbx = len(batch_of(name))
        pairs += [x, batch_letters[nb - nbx:] + tuple(f"{name}{i}" for i in range(x.ndim - nbx))]
    chunks, _ = unify_chunks(*pairs)
    batch_chunks = tuple(chunks[letter] for letter in batch_letters) if nb else ()
    for i, letter in enumerate(batch_letters):
        pairs += [da.arange(batch[i], chunks=batch_chunks[i]), (letter,)]
    blocks = da.blockwise(_run_block, batch_letters, *pairs, token=f"adla-{fname}",
                          fn=fn, names=tuple(names),
                          options=options, nb=nb, concatenate=True,
                          meta=np.empty((0,) * nb, dtype=object))

    results = []
    for i, out in enumerate(sample):
        if backward:
            grad_of = spec.differentiable[i]
            token = f"adla-{fname}-d{grad_of}"
            if grad_of in arrays:       # summed to that operand's shape
                results.append(_gradient(blocks, i, out, arrays[grad_of], core[grad_of], batch,
                                         batch_chunks, token))
            else:                       # an input the backward does not take: full batch
                results.append(_output(blocks, i, out, batch_chunks, token))
        else:
            names_out = [o.name for o in spec.outputs]
            if bound.tangents:
                names_out += ["d" + o for o in names_out]
            results.append(_output(blocks, i, out, batch_chunks, f"adla-{fname}-{names_out[i]}"))
    return bound.grouped(results)


def _check_core_chunks(fname, name, x, ncore):
    split = [ax for ax in range(x.ndim - ncore, x.ndim) if len(x.chunks[ax]) > 1]
    if split:
        raise ValueError(f"adla.{fname}: operand {name} has its core axes {tuple(split)} split "
                         f"across chunks {x.chunks}; each core axis must be one chunk "
                         f"(rechunk, e.g. x.rechunk({{{', '.join(f'{a}: -1' for a in split)}}}))")


def _array_module(arrays):
    for x in arrays.values():
        meta = getattr(x, "_meta", x)
        if type(meta).__module__.partition(".")[0] == "cupy":
            import cupy
            return cupy
    return np


def _core_shape(x, ncore):
    return x.shape[len(x.shape) - ncore:] if x.ndim >= ncore else x.shape


def _run_block(*args, fn, names, options, nb):
    operands = dict(zip(names, args[:len(names)]))
    offsets = tuple(int(a[0]) if len(a) else 0 for a in args[len(names):])
    threads = _threads_per_task()
    try:
        if threads is None:
            result = fn(**operands, **options)
        else:
            with _cpu.thread_share(threads):
                result = fn(**operands, **options)
    except LinAlgError as error:
        raise _globalised(error, offsets) from None
    return flat(result)


def _globalised(error, offsets):
    """``error`` with its chunk-local batch indices moved by the block's ``offsets``."""
    local = [tuple(i) for i in error.indices]
    indices = [tuple(i + o for i, o in zip(index, offsets)) for index in local]
    message = str(error)
    if local:
        message = message.replace(f"batch index {local[0]}", f"batch index {indices[0]}", 1)
    message = message.replace(" matrices failed;", " matrices of its chunk failed;", 1)
    return LinAlgError(message, indices)


def _output(blocks, i, sample, batch_chunks, token):
    nb = len(batch_chunks)
    core_shape = sample.shape[1:]
    return blocks.map_blocks(operator.itemgetter(i), dtype=sample.dtype, token=token,
                             chunks=batch_chunks + tuple((s,) for s in core_shape),
                             new_axis=list(range(nb, nb + len(core_shape))),
                             meta=np.empty((0,) * (nb + len(core_shape)), dtype=sample.dtype))


def _gradient(blocks, i, sample, primal, ncore, batch, batch_chunks, token):
    """Gradient ``i`` of the backward, summed to its operand's shape: each block's operator call
    sums over the axes it broadcast within the block; a dask sum adds the blocks up."""
    nb = len(batch)
    core_shape = sample.shape[1:]
    own = primal.shape[:primal.ndim - ncore]
    own = (1,) * (nb - len(own)) + tuple(own)
    broadcast = [ax for ax in range(nb) if own[ax] == 1 and batch[ax] != 1]
    chunks = tuple((1,) * len(c) if ax in broadcast else c for ax, c in enumerate(batch_chunks))

    def pick(parts):
        g = parts[i]
        return g.reshape((1,) * (nb + len(core_shape) - g.ndim) + g.shape)

    grad = blocks.map_blocks(pick, dtype=sample.dtype, token=token,
                             chunks=chunks + tuple((s,) for s in core_shape),
                             new_axis=list(range(nb, nb + len(core_shape))),
                             meta=np.empty((0,) * (nb + len(core_shape)), dtype=sample.dtype))
    if broadcast:
        grad = grad.sum(axis=tuple(broadcast), keepdims=True)
    return grad.reshape(primal.shape)


def _threads_per_task():
    """Threads one adla call may use inside a dask task. Dask runs a task per worker thread and
    counts a thread as a core, so a task gets one thread (BLAS too): a worker with k threads
    then keeps to about k cores. Only a task run in the caller's own main thread (the
    synchronous scheduler) keeps adla's default, all cores."""
    try:
        from distributed import get_worker
        get_worker()
        return 1
    except (ImportError, ValueError):
        pass
    if threading.current_thread() is threading.main_thread() and \
            multiprocessing.parent_process() is None:
        return None
    return 1
