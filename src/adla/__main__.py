"""``python -m adla demo``: the main demo, Gaussian-process learning on Mauna Loa CO2."""
import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m adla", description=__doc__)
    parser.add_argument("command", choices=["demo"], help="demo: fit the Rasmussen & Williams "
                        "CO2 kernel with adla gradients, print it and plot the extrapolation")
    args, rest = parser.parse_known_args(argv)
    from .examples.mauna_loa import main as demo
    return demo(rest)


if __name__ == "__main__":
    sys.exit(main())
