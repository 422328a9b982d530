"""Instructions per due user of any tree's keeper, through the API every version has.

Usage:
    python benchmarks/bench_keeper_tree.py .                 # this checkout
    python benchmarks/bench_keeper_tree.py /tmp/base         # e.g. `git worktree add /tmp/base 9e29806`

bench_keeper.py fills the store in the current version's layout, which older trees cannot
read; this script only calls what every version of the keeper offers (TokenManager.save,
SubscriptionKeeper.keep and renew_due), so a tree before the keeper's rework can be compared
with today's. For each of two user counts a first process (not counted) saves the users'
tokens, declares two subscriptions each and runs a first round (registering them); a
second process, counted by valgrind, moves its clock past the refresh leeway and runs the
hourly round: per user one refresh and two registrations, against benchmarks/fake_kenar.py
answering at once. The difference of the two counts per user cancels start-up.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

import fake_kenar
from _callgrind import instructions

COUNTS = (100, 300)

#: The child: argv = tree, "setup" or "round", store path, base URL, users, concurrency.
CHILD = r"""
import sys, time
tree, mode, path, base, users, concurrency = sys.argv[1:7]
sys.path.insert(0, tree)
import kenar_api_client
from kenar_api_client.oauth import OAuthClient, OAuthToken, SQLiteTokenStore, SubscriptionKeeper, TokenManager
from kenar_api_client.api.events_api import EventsApi  # what a first registration loads

assert kenar_api_client.__file__.startswith(tree), kenar_api_client.__file__
offset = 0.0 if mode == "setup" else 3600 - 300 + 1.0  # the round: every token due
clock = lambda: time.time() + offset
configuration = kenar_api_client.Configuration(host=base, api_key={"APIKey": "bench-api-key"})
oauth = OAuthClient(
    "bench-app", "bench-secret", "http://127.0.0.1/cb", base, configuration=configuration, clock=clock
)
tokens = TokenManager(oauth, SQLiteTokenStore(path), leeway=300, clock=clock)
options = {} if concurrency == "default" else {"concurrency": int(concurrency)}
keeper = SubscriptionKeeper(tokens, kenar_api_client.ApiClient(configuration), **options)
count = int(users)
if mode == "setup":
    now = time.time()
    for index in range(count):
        user = f"user-{index}"
        token = OAuthToken(f"at.{index}.0", f"rt.{index}.0", now + 3600, SCOPES.split(), obtained_at=now)
        tokens.save(user, token)
        keeper.keep(user, {"event_type": "POST_UPDATE", "metadata": {"user": user}})
        keeper.keep(user, {"event_type": "NEW_MESSAGE_ON_POST", "event_resource_id": "wZ3kT9pQ"})
report = keeper.renew_due()
assert report.ok and str(report).startswith(f"{2 * count} registered"), str(report)
""".replace("SCOPES", repr(fake_kenar.SCOPES))


def per_user(tree: str, concurrency: str, base_url: str, work: str) -> float:
    script = os.path.join(work, "keeper_child.py")
    with open(script, "w", encoding="utf-8") as file:
        file.write(CHILD)
    totals = []
    for users in COUNTS:
        path = os.path.join(work, f"{users}.sqlite3")
        common = [path, base_url, str(users), concurrency]
        subprocess.run([sys.executable, script, tree, "setup", *common], check=True)
        totals.append(instructions([sys.executable, script, tree, "round", *common]))
    return (totals[1] - totals[0]) / (COUNTS[1] - COUNTS[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tree", help="a checkout of kenar-api-client (its package is imported from there)")
    parser.add_argument("--concurrency", default="default", help="the keeper's concurrency (default: unset)")
    args = parser.parse_args()
    tree = os.path.abspath(args.tree)
    server, base_url = fake_kenar.start(0.0)
    try:
        counted = per_user(tree, args.concurrency, base_url, tempfile.mkdtemp(prefix="kenar-keeper-tree-"))
    finally:
        server.terminate()
    print(f"{tree} (concurrency {args.concurrency}): {counted:,.0f} instructions per due user")
    return 0


if __name__ == "__main__":
    sys.exit(main())
