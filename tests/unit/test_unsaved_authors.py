"""Who a save record names: the authors of the changes that save writes, no one else."""

from cs3collab.service.storage import UnsavedAuthors


def test_a_save_names_those_whose_changes_it_writes_and_forgets_those_fully_saved():
    authors = UnsavedAuthors()
    authors.note("e", "Albert Einstein", 1)
    authors.note("e", "Albert Einstein", 2)
    authors.note("m", "Marie Curie", 3)  # after the save below read the room
    assert authors.saved_up_to(2) == {"e": "Albert Einstein"}
    # marie restores a version: the next save names her only (einstein's typing was saved)
    authors.note("m", "Marie Curie", 4)
    assert authors.saved_up_to(4) == {"m": "Marie Curie"}
    assert authors.saved_up_to(5) == {}


def test_someone_typing_across_a_save_is_named_by_both_saves():
    authors = UnsavedAuthors()
    authors.note("e", "Albert Einstein", 1)
    authors.note("e", "Albert Einstein", 3)
    assert authors.saved_up_to(2) == {"e": "Albert Einstein"}  # seq 1 is in it
    assert authors.saved_up_to(3) == {"e": "Albert Einstein"}  # seq 3 is in this one
    authors.note("r", "Richard Feynman", 7)
    assert authors.saved_up_to(6) == {}  # richard's change is not in a save of up to 6
    assert authors.saved_up_to(7) == {"r": "Richard Feynman"}
