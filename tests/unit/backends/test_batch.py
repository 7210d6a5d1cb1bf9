"""backends.batch shows a progress bar on a terminal and plain lines elsewhere (CI logs)."""
import io

from backends.batch import Progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def run(stream):
    progress = Progress(2, stream=stream)
    for i, model in enumerate(["logmel", "pann_upsample"], 1):
        progress.start("v4 " + model)
        progress.done("[{}/2] v4 {} ok".format(i, model))
    progress.close()
    return stream.getvalue()


def test_plain_lines_when_not_a_terminal():
    assert run(io.StringIO()) == "[1/2] v4 logmel ok\n[2/2] v4 pann_upsample ok\n"


def test_a_bar_on_a_terminal_keeps_the_result_lines():
    text = run(Terminal())
    assert "\r" in text and "2/2" in text and "conversion" in text     # tqdm's bar
    assert "[1/2] v4 logmel ok\n" in text and "[2/2] v4 pann_upsample ok\n" in text
