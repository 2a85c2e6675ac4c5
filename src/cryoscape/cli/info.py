"""(info: under construction)"""


def add_args(p):
    pass


def main(args):
    raise SystemExit("not yet")
