from __future__ import annotations

import pytest

from helpers import grading


def reference_double(x):
    return 2 * x


def test_or_reference_uses_the_students_function_when_it_works(capsys):
    def double(x):
        return x + x

    f = grading.or_reference(double, reference_double)
    assert f(4) == 8 and f.__name__ == "double"
    assert capsys.readouterr().out == ""


def test_or_reference_falls_back_once_with_a_note_when_the_student_raises(capsys):
    calls = []

    def double(x):
        calls.append(x)
        raise NotImplementedError()

    f = grading.or_reference(double, reference_double)
    assert [f(1), f(3)] == [2, 6]
    assert calls == [1, 3]  # the student's code is tried every time (a fixed answer is picked up)
    out = capsys.readouterr().out
    assert out.count("[course]") == 1
    assert "double raised NotImplementedError" in out and "reference_double" in out


def test_blocked_reaches_every_reference_and_restores_them():
    """grading.blocked (hidden tests of exercises about writing what a helper does): the helper's
    re-exports in other modules and the caller's own aliases are blocked too, and restored after."""
    import sys

    from helpers import compression as C
    from helpers import grading, models
    from helpers.compression import count_nonzero as alias  # noqa: F401 - an alias, as a student might

    measure_module = sys.modules["helpers.compression.measure"]
    workflow_module = sys.modules["helpers.compression.workflow"]
    net = grading.tiny_net()
    n = C.count_nonzero(net)
    module = sys.modules[__name__]
    module.alias_in_module = C.count_nonzero
    with grading.blocked([C.count_nonzero, models.param_groups], "count them yourself"):
        for call in (lambda: C.count_nonzero(net), lambda: workflow_module.count_nonzero(net),
                     lambda: measure_module.count_nonzero(net), lambda: module.alias_in_module(net),
                     lambda: models.param_groups(net, 0.1)):
            with pytest.raises(AssertionError, match="count them yourself"):
                call()
        assert C.sparsity(net) >= 0  # other helpers still work
    assert C.count_nonzero(net) == n == module.alias_in_module(net) == measure_module.count_nonzero(net)
    block = grading.blocked([C.count_nonzero], "again")
    for _ in range(2):  # reusable, and restored after an error
        with pytest.raises(AssertionError, match="again"):
            with block:
                C.count_nonzero(net)
        assert C.count_nonzero(net) == n
