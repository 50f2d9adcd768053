"""Shared helpers of the examples: packaged data, a progress line, finite differences."""
import sys
from importlib import resources

import numpy as np


def load_csv(name):
    """A packaged data set as a dict of float columns (lines starting with # are comments)."""
    with resources.files("adla.examples").joinpath("data", name).open() as f:
        lines = [line.strip() for line in f if line.strip() and not line.startswith("#")]
    header = lines[0].split(",")
    values = np.array([[float(x) for x in line.split(",")] for line in lines[1:]])
    return {column: values[:, i] for i, column in enumerate(header)}


class Progress:
    """A one-line progress bar on stderr showing the current objective."""

    def __init__(self, total, label, width=30, stream=sys.stderr):
        self.total, self.label, self.width, self.stream = total, label, width, stream
        self.count, self.value = 0, float("nan")
        self.live = hasattr(stream, "isatty") and stream.isatty()   # redraw only on a terminal

    def line(self):
        filled = min(self.width, self.width * self.count // max(self.total, 1))
        bar = "#" * filled + "-" * (self.width - filled)
        return f"{self.label} [{bar}] step {self.count:4d}  objective {self.value:.6f}"

    def update(self, value):
        self.count, self.value = self.count + 1, value
        if self.live:
            self.stream.write("\r" + self.line())
            self.stream.flush()

    def close(self):
        self.stream.write(("\r" if self.live else "") + self.line() + "\n")
        self.stream.flush()


def finite_difference_gradient(fun, theta, h=1e-6):
    """Central differences of ``fun(theta)[0]``, one coordinate at a time."""
    grad = np.empty_like(theta)
    for i in range(len(theta)):
        step = np.zeros_like(theta)
        step[i] = h
        grad[i] = (fun(theta + step)[0] - fun(theta - step)[0]) / (2 * h)
    return grad
