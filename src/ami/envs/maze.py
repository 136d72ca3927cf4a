"""Maze: the Two-Rooms dot world generalised to a grid of rooms joined by doors.

An n×n grid of rooms (3×3 by default) fills a 64×64 arena; the walls between neighbouring rooms
have a door only where the layout says so. The layout is a random spanning tree of the room grid
(plus `extra_doors` more doors, which make loops), drawn from `layout_seed`: every room can be
reached, and a room next door may be many rooms away through the doors — the far goals that flat
latent planning fails on. The dot, its actions (2-D displacements, norm ≤ 2.45 px), the sliding
against walls and the success test (ending within 4.5 px of the goal) are Two-Rooms'.

Coordinates are pixels, (x, y) with x to the right and y down, as in the image. Rooms are
numbered row by row: room = row · n + column.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from ami.envs.actions import clip_action
from ami.envs.dot import DotWorld


@dataclass(frozen=True)
class MazeLayout:
    """Which neighbouring rooms a door joins, and where along their wall it opens."""

    rooms: int
    doors: tuple[tuple[int, int, int], ...]   # (room a, room b > a, door start along the wall, px)


def random_layout(rooms: int, rng: np.random.Generator, spans: list[tuple[int, int]],
                  door_width: int, extra_doors: int = 0) -> MazeLayout:
    """A random spanning tree of the rooms (randomised depth-first search), plus `extra_doors`
    more doors between neighbours, each opening at a random place along its wall."""
    n = rooms
    def neighbours(r):
        row, col = divmod(r, n)
        out = [(row + dr) * n + col + dc for dr, dc in ((0, 1), (1, 0), (0, -1), (-1, 0))
               if 0 <= row + dr < n and 0 <= col + dc < n]
        return out
    edges, seen, stack = set(), {0}, [0]
    while stack:
        r = stack[-1]
        options = [m for m in neighbours(r) if m not in seen]
        if not options:
            stack.pop()
            continue
        m = options[int(rng.integers(len(options)))]
        edges.add((min(r, m), max(r, m)))
        seen.add(m)
        stack.append(m)
    others = sorted({(min(r, m), max(r, m)) for r in range(n * n) for m in neighbours(r)} - edges)
    for i in rng.permutation(len(others))[:extra_doors]:
        edges.add(others[i])
    doors = []
    for a, b in sorted(edges):
        # the door opens along the side the two rooms share: their row span for a vertical wall
        ra, ca = divmod(a, n)
        lo, hi = spans[ra] if b == a + 1 else spans[ca]
        doors.append((a, b, int(rng.integers(lo + 2, hi - 2 - door_width + 1))))
    return MazeLayout(rooms, tuple(doors))


class Maze(DotWorld):
    """An n×n grid of rooms joined by doors; pixels in, 2-D displacement actions out."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    border = 2            # thickness of the outer wall (px)
    wall_thickness = 2    # thickness of the inner walls (px)
    door_width = 8        # opening of a door (px)
    agent_radius = 1.5    # collision radius of the dot (px)
    agent_sigma = 1.5     # width of the rendered Gaussian dot (px)
    max_action_norm = 2.45
    success_radius = 4.5
    goal_margin = 3.0     # sampled starts and goals keep this far from any wall

    def __init__(self, rooms: int = 3, size: int = 64, layout_seed: int = 0,
                 extra_doors: int = 0, random_layout: bool = False,
                 render_mode: str = "rgb_array"):
        if rooms < 2:
            raise ValueError(f"a maze needs at least 2 rooms per side, got {rooms}")
        # a room must hold its door with 2 px of wall on either side
        if (size - 2 * self.border) // rooms - self.wall_thickness < self.door_width + 5:
            raise ValueError(f"{rooms}×{rooms} rooms do not fit in {size} px")
        self.rooms, self.size, self.layout_seed = rooms, size, layout_seed
        self.extra_doors, self.random_layout, self.render_mode = extra_doors, random_layout, \
            render_mode
        m = self.max_action_norm
        self.action_space = gym.spaces.Box(-m, m, shape=(2,), dtype=np.float32)
        self.observation_space = gym.spaces.Box(0, 255, (size, size, 3), np.uint8)
        self._grid = np.arange(size, dtype=np.float32)
        # room i spans [spans[i][0], spans[i][1]) pixels along either axis; walls lie between
        pitch = (size - 2 * self.border + self.wall_thickness) / rooms
        starts = [round(self.border + i * pitch - self.wall_thickness) for i in range(1, rooms)]
        self.walls = [(s, s + self.wall_thickness) for s in starts]   # inner walls (px)
        edges = [self.border] + [p for w in self.walls for p in w] + [size - self.border]
        self.spans = [(edges[2 * i], edges[2 * i + 1]) for i in range(rooms)]
        self.state = np.zeros(2, np.float32)
        self.goal: np.ndarray | None = None
        self.set_layout(random_layout_of(self, np.random.default_rng(layout_seed)))

    # ----------------------------------------------------------------- geometry
    def set_layout(self, layout: MazeLayout) -> None:
        """Use `layout`: rebuild the wall rectangles, the room graph and the background."""
        if layout.rooms != self.rooms:
            raise ValueError(f"layout for {layout.rooms} rooms, world has {self.rooms}")
        self.layout = layout
        n, w = self.rooms, self.door_width
        solid = np.zeros((self.size, self.size), bool)      # (y, x)
        b = self.border
        solid[:b, :] = solid[-b:, :] = solid[:, :b] = solid[:, -b:] = True
        for x0, x1 in self.walls:
            solid[:, x0:x1] = True
            solid[x0:x1, :] = True
        self.graph: dict[int, list[int]] = {r: [] for r in range(n * n)}
        self._door_at: dict[tuple[int, int], tuple[float, float]] = {}
        for a, b_, start in layout.doors:
            ra, ca = divmod(a, n)
            if b_ == a + 1:        # a vertical wall between columns ca and ca+1
                x0, x1 = self.walls[ca]
                solid[start:start + w, x0:x1] = False
                centre = ((x0 + x1) / 2, start + w / 2)
            else:                  # a horizontal wall between rows ra and ra+1
                y0, y1 = self.walls[ra]
                solid[y0:y1, start:start + w] = False
                centre = (start + w / 2, (y0 + y1) / 2)
            self.graph[a].append(b_)
            self.graph[b_].append(a)
            self._door_at[(a, b_)] = self._door_at[(b_, a)] = centre
        self.solid = solid
        self._rects = self._wall_rects(solid)
        self._distances = self._room_distances()
        img = np.zeros((self.size, self.size, 3), np.uint8)
        img[solid] = (90, 90, 200)
        self._background = img

    def _wall_rects(self, solid: np.ndarray) -> np.ndarray:
        """Inner-wall rectangles (x0, y0, x1, y1) grown by the dot's radius: the places its
        centre may not enter. Runs of solid pixels along each inner wall, in pixel units."""
        r, rects = self.agent_radius, []
        for x0, x1 in self.walls:
            for axis in (0, 1):        # 0: the vertical wall at columns x0..x1, 1: horizontal
                line = solid[:, x0] if axis == 0 else solid[x0, :]
                edges = np.flatnonzero(np.diff(np.r_[0, line.astype(np.int8), 0]))
                for s, e in zip(edges[::2], edges[1::2], strict=True):
                    rect = (x0, s, x1, e) if axis == 0 else (s, x0, e, x1)
                    rects.append((rect[0] - r, rect[1] - r, rect[2] + r, rect[3] + r))
        return np.array(rects, np.float64)

    def _room_distances(self) -> np.ndarray:
        """Rooms apart through the doors, (R, R), by breadth-first search."""
        count = self.rooms**2
        dist = np.full((count, count), -1, int)
        for source in range(count):
            dist[source, source] = 0
            queue = deque([source])
            while queue:
                r = queue.popleft()
                for m in self.graph[r]:
                    if dist[source, m] < 0:
                        dist[source, m] = dist[source, r] + 1
                        queue.append(m)
        return dist

    def room_distance(self, a: int, b: int) -> int:
        """How many doors the shortest way from room a to room b goes through."""
        return int(self._distances[a, b])

    def room_path(self, a: int, b: int) -> list[int]:
        """The rooms on the shortest way from a to b, both included."""
        path = [a]
        while path[-1] != b:
            here = path[-1]
            path.append(next(m for m in self.graph[here]
                             if self._distances[m, b] == self._distances[here, b] - 1))
        return path

    def door_between(self, a: int, b: int) -> np.ndarray:
        """Centre (x, y) of the door joining neighbouring rooms a and b."""
        return np.array(self._door_at[(a, b)], np.float32)

    def room_of(self, xy: np.ndarray) -> int:
        """The room a position is in (a position inside a doorway counts for the nearer side)."""
        mids = [(x0 + x1) / 2 for x0, x1 in self.walls]
        col = int(np.searchsorted(mids, float(xy[0])))
        row = int(np.searchsorted(mids, float(xy[1])))
        return row * self.rooms + col

    def move(self, xy: np.ndarray, action: np.ndarray) -> np.ndarray:
        """One step of the dynamics: clip the action's norm, then move x then y against walls."""
        a = clip_action(action, self.max_action_norm)
        lo = self.border + self.agent_radius
        hi = self.size - 1 - self.border - self.agent_radius
        x, y = float(xy[0]), float(xy[1])
        nx = min(max(x + a[0], lo), hi)
        for x0, y0, x1, y1 in self._rects:
            if y0 < y < y1:
                if x <= x0 < nx:
                    nx = x0
                elif x >= x1 > nx:
                    nx = x1
        ny = min(max(y + a[1], lo), hi)
        for x0, y0, x1, y1 in self._rects:
            if x0 < nx < x1:
                if y <= y0 < ny:
                    ny = y0
                elif y >= y1 > ny:
                    ny = y1
        return np.array([nx, ny], np.float32)

    def free_position(self, room: int, rng: np.random.Generator) -> np.ndarray:
        """A position uniform inside a room, `goal_margin` away from its walls."""
        row, col = divmod(room, self.rooms)
        g = self.agent_radius + self.goal_margin
        (x0, x1), (y0, y1) = self.spans[col], self.spans[row]
        return np.array([rng.uniform(x0 + g, x1 - 1 - g), rng.uniform(y0 + g, y1 - 1 - g)],
                        np.float32)

    def sample_start_and_goal(self, rng: np.random.Generator, min_rooms: int = 1,
                              max_rooms: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Start and goal uniform inside two rooms that are min_rooms..max_rooms rooms apart
        through the doors (exactly k: min_rooms = max_rooms = k)."""
        top = int(self._distances.max()) if max_rooms is None else max_rooms
        pairs = np.argwhere((self._distances >= min_rooms) & (self._distances <= top))
        if len(pairs) == 0:
            raise ValueError(f"no two rooms of this maze are {min_rooms}..{top} rooms apart "
                             f"(the farthest are {int(self._distances.max())})")
        start_room, goal_room = pairs[int(rng.integers(len(pairs)))]
        return self.free_position(int(start_room), rng), self.free_position(int(goal_room), rng)

    # ----------------------------------------------------------------- gymnasium API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        rng = self.np_random
        if self.random_layout:
            self.set_layout(random_layout_of(self, rng))
        options = options or {}
        if "state" in options:
            self.state = np.asarray(options["state"], np.float32).copy()
        else:
            self.state = self.free_position(int(rng.integers(self.rooms**2)), rng)
        self.goal = None if options.get("goal") is None else np.asarray(options["goal"], np.float32)
        return self.render(), self._info()


def random_layout_of(maze: Maze, rng: np.random.Generator) -> MazeLayout:
    """A random layout that fits `maze`'s rooms and doors."""
    return random_layout(maze.rooms, rng, maze.spans, maze.door_width, maze.extra_doors)
