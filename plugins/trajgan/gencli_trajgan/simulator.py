"""The default training data: a SYNTHETIC basketball half court, simulated here from fixed seeds.

Nothing here is real tracking data. The SportVU player tracking the papers used is proprietary and no longer
distributed, so gencli simulates possessions instead: five offensive players and the ball on an NBA half court
(47 x 50 ft, x from the baseline to the half-court line, y across; the basket at (5.25, 25)), 50 frames at
6.25 Hz (8 s). Each player heads for a macro-goal (a corner, a wing, an elbow, a block, the top of the key or
the basket, as in Zheng, Yue & Lucey 2016), no two players for the same spot, and picks a new one on arrival
or when it gets bored of the old one. Movement obeys human limits: a cruising speed drawn per player (at most
MAX_SPEED ft/s), acceleration at most MAX_ACCELERATION ft/s^2, and a player slows down in time to stop at its
goal and before a line. The ball follows its handler (dribbled about a foot ahead), is passed at PASS_SPEED to
a teammate (aimed where the receiver will be), and late in a possession may be shot at the basket.

Vectorised over plays with numpy: 5,000 plays take about a second.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COURT = (47.0, 50.0)  # feet
BASKET = (5.25, 25.0)
RATE = 6.25  # frames per second (SportVU recorded 25 Hz; Zhan et al. subsample to 6.25 Hz)
FRAMES = 50
MAX_SPEED = 20.0  # ft/s: about 6 m/s, a sprint; nobody cruises at it
MAX_ACCELERATION = 15.0  # ft/s^2: about 4.6 m/s^2
PASS_SPEED = 35.0  # ft/s
# Macro-goals: the spots an offence spaces the floor around (feet).
GOALS = {
    "left corner": (3.0, 3.5), "right corner": (3.0, 46.5), "left wing": (17.0, 8.0), "right wing": (17.0, 42.0),
    "left elbow": (19.0, 17.0), "right elbow": (19.0, 33.0), "left block": (7.0, 18.0), "right block": (7.0, 32.0),
    "top of the key": (27.0, 25.0), "basket": (5.5, 25.0),
}
GOAL_NAMES = tuple(GOALS)
GOAL_SPOTS = np.array(list(GOALS.values()))  # (K, 2)
WALL_MARGIN = 0.5  # feet a player keeps from the lines
MAX_PLAYERS = len(GOALS)


@dataclass
class SimulatedPlays:
    positions: np.ndarray  # (N, T, P + 1, 2) feet: the P players, then the ball
    goals: np.ndarray  # (N, T, P) int: each player's macro-goal (an index into GOAL_NAMES) in each frame
    roles: list[str]


def roles(players: int) -> list[str]:
    return [f"player {i + 1}" for i in range(players)] + ["ball"]


def simulate(n: int, seed: int, players: int = 5, frames: int = FRAMES) -> SimulatedPlays:
    """``n`` possessions of ``players`` attackers and the ball, drawn from ``seed`` alone."""
    if not 1 <= players <= MAX_PLAYERS:
        raise ValueError(f"players must be 1..{MAX_PLAYERS}")
    rng = np.random.default_rng(seed)
    dt = 1.0 / RATE
    k = len(GOAL_SPOTS)
    # Distinct first goals; players start a few feet off their spot, towards half court (bringing it up).
    goal = np.argsort(rng.random((n, k)), axis=1)[:, :players]  # (N, P)
    position = GOAL_SPOTS[goal] + rng.normal(0, 4, (n, players, 2)) + [rng.uniform(4, 14), 0]  # (N, P, 2)
    position = np.clip(position, WALL_MARGIN + 1, np.array(COURT) - WALL_MARGIN - 1)
    velocity = np.zeros((n, players, 2))
    cruise = rng.uniform(9.0, 16.0, (n, players, 1))  # ft/s, each player's own pace
    patience = rng.integers(6, 25, (n, players))  # frames before a player may give up on a goal

    holder = rng.integers(0, players, n)  # (N,) who has the ball
    held_for = np.zeros(n, dtype=int)
    ball = position[np.arange(n), holder].copy()  # (N, 2)
    flight_from, flight_to = ball.copy(), ball.copy()
    flight_left = np.zeros(n, dtype=int)  # frames until a pass (or shot) arrives; 0: the ball is held
    receiver = holder.copy()
    shot = np.zeros(n, dtype=bool)

    out_positions = np.zeros((n, frames, players + 1, 2))
    out_goals = np.zeros((n, frames, players), dtype=int)
    for t in range(frames):
        # -- macro-goals: arrive, or lose patience, then pick a spot nobody else is heading for --
        distance = np.linalg.norm(GOAL_SPOTS[goal] - position, axis=-1)  # (N, P)
        patience -= 1
        change = (distance < 2.0) | (patience <= 0)
        for p in range(players):
            who = np.flatnonzero(change[:, p])
            if len(who):
                taken = np.zeros((len(who), k), dtype=bool)
                taken[np.arange(len(who))[:, None], goal[who]] = True  # the team's current goals, own included
                scores = rng.random((len(who), k)) + taken * 2.0  # a free spot always wins
                goal[who, p] = np.argmin(scores, axis=1)
                patience[who, p] = rng.integers(6, 25, len(who))
        out_goals[:, t] = goal

        # -- movement: steer towards the goal within the speed and acceleration limits --
        target = GOAL_SPOTS[goal]  # (N, P, 2)
        offset = target - position
        distance = np.linalg.norm(offset, axis=-1, keepdims=True)  # (N, P, 1)
        desired = offset / np.maximum(distance, 1e-6) * np.minimum(cruise, stopping_speed(distance))
        desired += rng.normal(0, 1.0, desired.shape)
        velocity = _steer(position, velocity, desired)
        position = position + velocity * dt

        # -- the ball: dribbled, passed, or shot --
        held = flight_left == 0
        held_for = np.where(held, held_for + 1, 0)
        start_pass = held & ~shot & (held_for > 4) & (rng.random(n) < 0.09) & (players > 1)
        start_shot = held & ~shot & ~start_pass & (t > frames * 0.7) & (rng.random(n) < 0.05)
        if start_pass.any():
            who = np.flatnonzero(start_pass)
            pick = rng.integers(1, players, len(who))
            receiver[who] = (holder[who] + pick) % players  # never to oneself
        launch = start_pass | start_shot
        if launch.any():
            who = np.flatnonzero(launch)
            catch = np.where(start_shot[who, None], np.array(BASKET),
                             position[who, receiver[who]])  # (M, 2)
            flight = np.maximum(1, np.ceil(np.linalg.norm(catch - ball[who], axis=-1) / PASS_SPEED / dt)).astype(int)
            lead = np.where(start_shot[who, None], 0.0, velocity[who, receiver[who]] * (flight[:, None] * dt))
            flight_from[who], flight_to[who] = ball[who], np.clip(catch + lead, 0.5, np.array(COURT) - 0.5)
            flight_left[who] = flight
            shot[start_shot] = True
        in_air = flight_left > 0
        fraction = np.where(in_air, 1.0 / np.maximum(flight_left, 1), 0.0)[:, None]
        ball = np.where(in_air[:, None], ball + (flight_to - ball) * fraction, ball)
        flight_left = np.maximum(flight_left - 1, 0)
        caught = in_air & (flight_left == 0) & ~shot
        holder = np.where(caught, receiver, holder)
        holding = (flight_left == 0) & ~shot
        hand = position[np.arange(n), holder]  # (N, 2)
        heading = velocity[np.arange(n), holder]
        ahead = heading / np.maximum(np.linalg.norm(heading, axis=-1, keepdims=True), 1.0)
        ball = np.where(holding[:, None], hand + ahead, ball)  # dribbled about a foot ahead
        ball = np.clip(ball, 0.0, np.array(COURT))

        out_positions[:, t, :players] = position
        out_positions[:, t, players] = ball
    return SimulatedPlays(out_positions, out_goals, roles(players))


def _steer(position: np.ndarray, velocity: np.ndarray, desired: np.ndarray) -> np.ndarray:
    """The next velocity (N, P, 2): towards ``desired`` within the acceleration and speed limits, never faster
    towards a line than a player can stop WALL_MARGIN short of it. Braking for a line comes first; what is left
    of the acceleration budget turns the player towards ``desired``."""
    limit = MAX_ACCELERATION / RATE  # the most the velocity may change in one frame
    low = stopping_speed(position - WALL_MARGIN)  # (N, P, 2) speed caps towards x = 0 and y = 0
    high = stopping_speed(np.array(COURT) - WALL_MARGIN - position)  # ... and towards the far lines
    desired = np.clip(desired, -low, high)
    change = desired - velocity
    braking = (velocity < -low) | (velocity > high)  # (N, P, 2) components that must slow down now
    first = np.where(braking, change, 0.0)
    first *= np.minimum(1.0, limit / np.maximum(np.linalg.norm(first, axis=-1, keepdims=True), 1e-9))
    used = np.linalg.norm(first, axis=-1, keepdims=True)
    budget = np.sqrt(np.maximum(limit**2 - used**2, 0.0))
    rest = np.where(braking, 0.0, change)
    rest *= np.minimum(1.0, budget / np.maximum(np.linalg.norm(rest, axis=-1, keepdims=True), 1e-9))
    velocity = velocity + first + rest
    speed = np.linalg.norm(velocity, axis=-1, keepdims=True)
    return velocity * np.minimum(1.0, MAX_SPEED / np.maximum(speed, 1e-9))


def stopping_speed(room: np.ndarray, share: float = 0.8) -> np.ndarray:
    """The fastest speed from which a player still stops within ``room`` feet, braking at ``share`` of the
    acceleration limit one frame at a time: v dt + v^2 / (2 a) <= room."""
    dt, brake = 1.0 / RATE, share * MAX_ACCELERATION
    room = np.maximum(room, 0.0)
    return brake * (np.sqrt(dt * dt + 2 * room / brake) - dt)
