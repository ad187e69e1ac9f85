"""``mlx.lock``: what each declared model resolved to, pinned (docs/lock.md)."""
