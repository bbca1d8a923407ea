import numpy as np

from aigciqa.generate.edges import canny


def test_canny_finds_the_outline_of_a_square_and_nothing_inside():
    image = np.zeros((40, 40))
    image[10:30, 10:30] = 255
    edges = canny(image, 100, 200)
    assert edges[10:30, 9:11].any() and edges[9:11, 10:30].any()      # left and top sides
    assert not edges[14:26, 14:26].any() and not edges[:5, :].any()  # flat areas
    # Non-maximum suppression: the edge is at most 2 pixels wide across a side.
    assert edges[20, :].sum() <= 4


def test_canny_weak_edges_need_a_strong_neighbour():
    image = np.zeros((30, 30))
    image[:, 15:] = 40   # gradient magnitude 160: weak only
    assert not canny(image, 100, 200).any()
    assert canny(image, 100, 150).any()
