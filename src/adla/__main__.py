"""``python -m adla demo``: run the worked example."""
import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m adla", description=__doc__)
    parser.add_argument("command", choices=["demo"], help="demo: Gaussian-process marginal "
                        "likelihood and its gradient, built from adla forward/backward calls")
    parser.parse_args(argv)
    from ._demo import main as demo
    return demo()


if __name__ == "__main__":
    sys.exit(main())
