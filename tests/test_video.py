"""Episode pictures: the goal frame beside every frame, the goal ring where the world puts it."""

import imageio.v2 as imageio
import numpy as np

from ami.envs import PushT, TwoRooms
from ami.evaluate.video import RING, save_gif


def _ring_centre(frame: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero((frame == RING).all(-1))
    assert len(xs) > 0, "no ring drawn"
    return np.array([xs.mean(), ys.mean()])


def test_pusht_gif_rings_the_goal_block_inside_the_frame_and_shows_the_goal_frame(tmp_path):
    env = PushT()
    env.reset(seed=0)
    goal = env.get_state().copy()
    goal[2:4] = [300.0, 200.0]                                          # block at (300, 200)
    start = env.get_state()
    frames = [env.render_state(np.r_[start[:2] + 30 * i, start[2:]]) for i in range(3)]
    goal_frame = env.render_state(goal)
    path = save_gif(frames, tmp_path / "episode.gif", goal_frame, env.goal_ring(goal),
                    upscale=1)
    shown = np.asarray(imageio.mimread(path))[..., :3]                  # (3, H, 2W+2, 3)
    h, w = frames[0].shape[:2]
    assert shown.shape == (3, h, 2 * w + 2, 3)
    np.testing.assert_allclose(_ring_centre(shown[0][:, :w]), [300 * w / 512, 200 * h / 512],
                               atol=1.0)
    np.testing.assert_array_equal(shown[0][:, w + 2:], goal_frame)


def test_two_rooms_ring_sits_on_the_goal_pixel():
    env = TwoRooms()
    x, y, r = env.goal_ring(np.array([20.0, 40.0]))
    assert (x, y, r) == (20.0, 40.0, env.success_radius)
