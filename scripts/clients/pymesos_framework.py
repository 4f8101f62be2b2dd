#!/usr/bin/env python3
"""The project's own pymesos acceptance framework (pymesos 0.3.15 from PyPI, unchanged).

    pymesos_framework.py MASTER N [--timeout SECS] [--explicit-acks] [--strict] [-q]

Subscribes to MASTER (`host:port`) through the v1 scheduler HTTP API, launches N command tasks
(`echo hello-<i> && sleep 1`, cpus 0.1, mem 32) from the offers it gets, declines what it does
not use, waits until every task is terminal, stops the driver (TEARDOWN) and prints

    pymesos: <finished> finished, <failed> failed [(why)]

Exit codes: 0 all N finished; 1 a task ended otherwise (FAILED, LOST, ERROR, KILLED, ...);
2 timeout; 3 driver or master error (ERROR event, refused call, driver thread died, and with
--strict a subscription stream that broke after SUBSCRIBED); 64 bad command line.

Set the venv up with scripts/setup_venv.sh (pymesos needs a pure-Python http-parser on 3.11+).
"""

import argparse
import logging
import os
import signal
import socket
import sys
import threading
import time
import uuid

try:
    from pymesos import MesosSchedulerDriver, Scheduler
except ImportError as exc:  # the environment, not the server under test
    print("pymesos_framework: cannot import pymesos (%s); run scripts/setup_venv.sh" % exc,
          file=sys.stderr)
    sys.exit(3)

CPUS, MEM = 0.1, 32.0
OK_STATE = "TASK_FINISHED"
# Terminal (or, for a short test, as good as terminal) states other than FINISHED.
BAD_STATES = {"TASK_FAILED", "TASK_LOST", "TASK_ERROR", "TASK_KILLED", "TASK_DROPPED",
              "TASK_GONE", "TASK_GONE_BY_OPERATOR", "TASK_UNREACHABLE", "TASK_UNKNOWN"}

log = logging.getLogger("pymesos_framework")


def scalar_pool(offer, name):
    """The offer's unreserved-or-not SCALAR entries named `name`, as [entry, amount left]."""
    pool = []
    for r in offer.get("resources") or []:
        if r.get("name") == name and r.get("type", "SCALAR") == "SCALAR":
            amount = float((r.get("scalar") or {}).get("value", 0.0))
            if amount > 0:
                pool.append([r, amount])
    return pool


def take(pool, amount):
    """A resource of `amount` carved from one entry of `pool`, keeping its role/allocation
    info so that the master accepts it; None when no entry is large enough."""
    for slot in pool:
        entry, left = slot
        if left + 1e-9 >= amount:
            slot[1] = left - amount
            res = {k: v for k, v in entry.items() if k != "scalar"}
            res["type"] = "SCALAR"
            res["scalar"] = {"value": amount}
            return res
    return None


class Hello(Scheduler):
    """Launches N echo tasks and records how each one ended."""

    def __init__(self, n, run_id, explicit_acks):
        self.n = n
        self.run_id = run_id
        self.explicit_acks = explicit_acks
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.todo = list(range(n))
        self.ours = set()
        self.finished = set()
        self.failed = {}
        self.fatal_error = None
        self.framework_id = None
        self.offers = 0
        self.updates = 0
        self.stopping = False
        self.breaks = 0

    def fatal(self, why):
        with self.lock:
            self.fatal_error = self.fatal_error or why
        log.error("%s", why)
        self.done.set()

    def registered(self, driver, framework_id, master_info):
        self.framework_id = framework_id.get("value")
        log.info("SUBSCRIBED as %s", self.framework_id)

    def reregistered(self, driver, master_info):
        log.info("re-subscribed")

    def disconnected(self, driver):
        with self.lock:
            if self.framework_id is not None and not self.stopping:
                self.breaks += 1
                log.warning("subscription stream broke; pymesos re-subscribes")

    def resourceOffers(self, driver, offers):
        try:
            for offer in offers:
                self._one_offer(driver, offer)
        except Exception as exc:  # e.g. RuntimeError for a non-2xx answer to ACCEPT/DECLINE
            self.fatal("ACCEPT/DECLINE failed: %s: %s" % (type(exc).__name__, exc))

    def _one_offer(self, driver, offer):
        with self.lock:
            self.offers += 1
            cpus, mems = scalar_pool(offer, "cpus"), scalar_pool(offer, "mem")
            tasks = []
            while self.todo:
                cpu, mem = take(cpus, CPUS), take(mems, MEM)
                if cpu is None or mem is None:
                    break
                i = self.todo.pop(0)
                tid = "pymesos-hello-%s-%d" % (self.run_id, i)
                self.ours.add(tid)
                tasks.append({
                    "name": "pymesos-hello-%d" % i,
                    "task_id": {"value": tid},
                    "agent_id": offer["agent_id"],
                    "resources": [cpu, mem],
                    "command": {"value": "echo hello-%d && sleep 1" % i},
                })
            more = bool(self.todo)
        if tasks:
            log.info("launching %s on %s", [t["task_id"]["value"] for t in tasks],
                     offer.get("hostname"))
            driver.launchTasks(offer["id"], tasks, {"refuse_seconds": 1.0})
        else:
            driver.declineOffer(offer["id"], {"refuse_seconds": 1.0 if more else 3600.0})

    def statusUpdate(self, driver, status):
        tid = (status.get("task_id") or {}).get("value")
        state = status.get("state")
        log.info("update %s %s (reason=%s message=%r)", tid, state, status.get("reason"),
                 status.get("message"))
        try:
            if self.explicit_acks and "uuid" in status:
                driver.acknowledgeStatusUpdate(status)
        except Exception as exc:
            self.fatal("ACKNOWLEDGE failed: %s: %s" % (type(exc).__name__, exc))
            return
        with self.lock:
            self.updates += 1
            if tid not in self.ours:
                log.warning("update for a task that is not ours: %s", tid)
                return
            if state == OK_STATE:
                self.finished.add(tid)
                self.failed.pop(tid, None)
            elif state in BAD_STATES and tid not in self.finished:
                self.failed[tid] = "%s reason=%s message=%r" % (
                    state, status.get("reason"), status.get("message"))
            if len(self.finished) + len(self.failed) >= self.n:
                self.done.set()

    def error(self, driver, message):  # noqa: D401 - pymesos' callback name
        self.fatal("ERROR event from the master: %s" % (message,))


def stop(driver, budget=20.0):
    """driver.stop() sends TEARDOWN from pymesos' IO thread; bounded wait for it."""
    end = time.time() + budget
    t = threading.Thread(target=driver.stop, daemon=True)
    t.start()
    t.join(budget)
    io = getattr(driver, "_io_thread", None)
    if io is not None:
        io.join(max(0.0, end - time.time()))
        if io.is_alive():
            log.warning("pymesos IO thread still running after %gs", budget)


def main():
    p = argparse.ArgumentParser(description="pymesos acceptance framework")
    p.add_argument("master")
    p.add_argument("n", type=int)
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--explicit-acks", action="store_true")
    p.add_argument("--strict", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    try:
        args = p.parse_args()
    except SystemExit as e:
        return 64 if e.code else 0
    if args.n < 1 or args.timeout <= 0:
        print("pymesos_framework: N and --timeout must be positive", file=sys.stderr)
        return 64

    level = logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("pymesos").setLevel(level)

    sched = Hello(args.n, uuid.uuid4().hex[:8], args.explicit_acks)
    framework = {"user": os.environ.get("USER") or "root", "name": "pymesos-acceptance",
                 "hostname": socket.gethostname(), "failover_timeout": 100.0}
    # `timeout` bounds pymesos' reconnect attempts and each call's socket (default: a day).
    driver = MesosSchedulerDriver(sched, framework, args.master, use_addict=False,
                                  implicit_acknowledgements=not args.explicit_acks,
                                  timeout=args.timeout)

    # A dying pymesos IO thread interrupts the main thread (SIGINT) to re-raise its exception
    # at a random point; take it as a recorded failure instead.
    thread_errors = []

    def on_sigint(signum, frame):
        import pymesos.process as pp
        info = getattr(pp, "_exc_info", None)
        pp._exc_info = None
        if info is None:
            raise KeyboardInterrupt
        thread_errors.append(info[1])
        sched.done.set()

    signal.signal(signal.SIGINT, on_sigint)

    aborted = None
    timed_out = False
    deadline = time.time() + args.timeout
    started = False
    try:
        driver.start()
        started = True
        while not sched.done.wait(0.25):
            io = getattr(driver, "_io_thread", None)
            if io is not None and not io.is_alive():
                aborted = "pymesos driver thread exited"
                break
            if time.time() > deadline:
                timed_out = True
                break
    except KeyboardInterrupt:
        aborted = "interrupted"
    except BaseException as exc:
        aborted = "driver failed: %s: %s" % (type(exc).__name__, exc)
    finally:
        if started and sched.done.is_set() and not aborted:
            time.sleep(0.5)  # let the last implicit ACKNOWLEDGE go out and be answered
        with sched.lock:
            sched.stopping = True
        if started:
            stop(driver)
    if thread_errors:
        e = thread_errors[0]
        aborted = "pymesos driver thread failed: %s: %s" % (type(e).__name__, e)

    with sched.lock:
        finished, failed = len(sched.finished), dict(sched.failed)
        error, breaks = sched.fatal_error, sched.breaks
        pending = sorted(sched.ours - sched.finished - set(failed))
    for tid, why in sorted(failed.items()):
        print("pymesos: task %s: %s" % (tid, why), file=sys.stderr)
    if breaks and args.strict and not error:
        error = "--strict: the subscription stream broke %d time(s) after SUBSCRIBED" % breaks

    if error or aborted:
        code, why = 3, error or aborted
    elif failed:
        code, why = 1, "%d task(s) did not finish" % len(failed)
    elif timed_out or finished < args.n:
        code = 2
        if sched.framework_id is None:
            why = "timeout after %gs without SUBSCRIBED" % args.timeout
        else:
            why = ("timeout after %gs: %d launched not terminal %s, %d never launched "
                   "(offers %d, updates %d)" % (args.timeout, len(pending), pending,
                                                len(sched.todo), sched.offers, sched.updates))
    else:
        code, why = 0, None
    line = "pymesos: %d finished, %d failed" % (finished, len(failed))
    print(line + (" (%s)" % why if why else ""), flush=True)
    return code


if __name__ == "__main__":
    rc = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # pymesos' daemon threads (and kazoo's) can hang interpreter shutdown.
    os._exit(rc)
