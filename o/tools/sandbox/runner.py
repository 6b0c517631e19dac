"""The process that runs one tool call. Executed as a script: ``python -I -S runner.py <result_fd>``.

It depends on the standard library only and imports nothing from ``o``, so the same file
runs under the local sandbox and inside the sandbox Lambda. It starts with the
privileges of its parent, confines itself (network and mount namespaces, resource
limits, an unprivileged uid, no new privileges) and only then reads the tool's code.
Doing this here rather than in a ``preexec_fn`` keeps the server process from forking
into arbitrary Python code while other threads hold locks.

Protocol: the request is one JSON document on stdin; the answer is one JSON document
written to the file descriptor named in ``argv[1]``. The tool's own prints go to
stdout/stderr, which the parent reads separately, so nothing a tool prints can be
mistaken for its result.
"""

from __future__ import annotations

import ctypes
import errno
import inspect
import json
import linecache
import os
import resource
import sys
import traceback
from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REC = 0x4000
MS_PRIVATE = 0x40000
PR_SET_NO_NEW_PRIVS = 38
PR_SET_DUMPABLE = 4

BASE_PATH = "/usr/local/bin:/usr/bin:/bin"
# world-writable places that would otherwise be shared with the host and other tools
SCRATCH_DIRS = ("/var/tmp", "/dev/shm", "/run/lock")


def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def _unshare(flags: int) -> None:
    _check(_libc().unshare(flags), "unshare")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    def enc(value: str | None) -> bytes | None:
        return value.encode() if value is not None else None

    _check(_libc().mount(enc(source), enc(target), enc(fstype), flags, enc(data)), f"mount {target}")


def _count_processes(uid: int) -> int:
    count = 0
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}").st_uid == uid:
                    count += 1
            except OSError:
                continue
    return count


def confine(request: dict[str, Any]) -> list[str]:
    """Apply every isolation the machine allows; return the names of those in force.

    The order matters: namespaces and mounts need the privileges the uid change gives up,
    and the tool's own environment comes last, when nothing privileged is left to run.
    """
    wanted = request.get("isolate") or {}
    limits = request["limits"]
    uid = wanted.get("uid")
    # counted before any namespace changes what getuid() reports
    host_processes = _count_processes(os.getuid()) if uid is None else 0
    active: list[str] = []
    if wanted.get("netns") and _enter_network_namespace():
        active.append("netns")
    if wanted.get("mountns") and uid is not None:
        active.extend(_enter_mount_namespace(uid, int(limits["disk_bytes"])))
    _set_limits(limits, host_processes)
    active.append("rlimits")
    if _drop_privileges(uid):
        active.append("uid")
    _set_environment(request.get("env") or {})
    return active


def _enter_network_namespace() -> bool:
    """A new, empty network namespace; whether the kernel allowed it."""
    # root can enter a new network namespace directly; anyone else needs a user
    # namespace first, which some kernels and Lambda do not allow
    flags = CLONE_NEWNET if os.geteuid() == 0 else CLONE_NEWUSER | CLONE_NEWNET
    try:
        _unshare(flags)
    except OSError:
        return False
    return True


def _enter_mount_namespace(uid: int, disk_bytes: int) -> list[str]:
    """Private scratch mounts owned by ``uid`` and a private /proc; the names of those in force."""
    try:
        _unshare(CLONE_NEWNS)
        _mount(None, "/", None, MS_REC | MS_PRIVATE, None)
        options = f"size={disk_bytes},mode=0700,uid={uid},gid={uid}"
        _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, options)
        for scratch in SCRATCH_DIRS:
            if os.path.isdir(scratch):
                _mount("tmpfs", scratch, "tmpfs", MS_NOSUID | MS_NODEV, f"size=65536,mode=0700,uid={uid}")
        os.chdir("/tmp")
    except OSError:
        return []
    try:
        # a private /proc that lists only the tool's own processes: other
        # processes' command lines and environments are not even visible
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=2")
    except OSError:
        return ["mountns"]
    return ["mountns", "hidepid"]


def _set_limits(limits: dict[str, Any], host_processes: int) -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    cpu = max(1, int(limits["cpu_seconds"]))
    # the soft limit sends SIGXCPU; the hard one a second later is SIGKILL
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (int(limits["memory_bytes"]),) * 2)
    resource.setrlimit(resource.RLIMIT_NOFILE, (int(limits["open_files"]),) * 2)
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(limits["file_bytes"]),) * 2)
    # RLIMIT_NPROC counts every process of the uid; without a private uid the tool
    # shares it with its host, so the allowance is on top of what runs already
    processes = int(limits["processes"]) + host_processes
    resource.setrlimit(resource.RLIMIT_NPROC, (processes,) * 2)


def _drop_privileges(uid: int | None) -> bool:
    """No new privileges, the private uid if there is one, not dumpable; whether the uid changed."""
    libc = _libc()
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    if uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    # not dumpable: other processes of the same uid cannot ptrace or read our memory
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    return uid is not None


def _set_environment(tool_env: dict[str, Any]) -> None:
    home = os.getcwd()
    os.environ.clear()
    os.environ.update({"PATH": BASE_PATH, "HOME": home, "TMPDIR": home, "LANG": "C.UTF-8"})
    # the tool's variables are applied only now, after the privilege drop, so none of
    # them (LD_PRELOAD, say) can influence the privileged part of this process
    os.environ.update({str(k): str(v) for k, v in tool_env.items()})


def render(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, default=str)
    except (TypeError, ValueError):
        return repr(value)


def classify(exc: BaseException) -> tuple[str, str]:
    """(status, message) for an exception raised by the tool."""
    name = type(exc).__name__
    text = f"{name}: {exc}"
    if isinstance(exc, MemoryError):
        return "limit_exceeded", f"memory limit exceeded ({text})"
    if isinstance(exc, RecursionError):
        return "error", text
    if isinstance(exc, OSError):
        if exc.errno == errno.EFBIG:
            return "limit_exceeded", f"file size limit exceeded ({text})"
        if exc.errno == errno.EMFILE:
            return "limit_exceeded", f"open files limit exceeded ({text})"
        if exc.errno == errno.EAGAIN and isinstance(exc, BlockingIOError) and _from_process_start(exc):
            return "limit_exceeded", f"process limit exceeded ({text})"
    if isinstance(exc, RuntimeError) and "can't start new thread" in str(exc):
        return "limit_exceeded", f"process limit exceeded ({text})"
    return "error", text


def _from_process_start(exc: BaseException) -> bool:
    """Whether an EAGAIN came from starting a process or thread at the process limit."""
    frames = traceback.extract_tb(exc.__traceback__)
    if any("fork" in (f.line or "") or f.name in {"_execute_child", "_launch", "start"} for f in frames):
        return True
    soft, _ = resource.getrlimit(resource.RLIMIT_NPROC)
    return soft != resource.RLIM_INFINITY and _count_processes(os.getuid()) >= soft - 1


def main(argv: list[str]) -> int:
    result_fd = int(argv[1])
    me = os.getpid()
    request = json.loads(sys.stdin.buffer.read())
    answer: dict[str, Any]
    try:
        isolation = confine(request)
    except Exception as exc:  # refuse to run unconfined rather than run half-confined
        answer = {"status": "error", "message": f"sandbox setup failed: {type(exc).__name__}: {exc}"}
        _answer(result_fd, answer)
        return 2

    # started with -S; the parent says where installed packages live
    sys.path.extend(p for p in request.get("sys_path") or () if p not in sys.path)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)

    limit = int(request.get("return_char_limit", 6000))
    name = request["function_name"]
    try:
        namespace: dict[str, Any] = {"__name__": "__tool__", "__builtins__": __builtins__}
        filename = f"<tool {name}>"
        source = request["source_code"]
        # tracebacks then show the tool's own lines
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        exec(compile(source, filename, "exec"), namespace)
        function = namespace.get(name)
        if not callable(function):
            raise NameError(f"the tool source defines no function named {name!r}")
        value = function(**(request.get("args") or {}))
        if inspect.iscoroutine(value):
            import asyncio

            value = asyncio.run(value)
        text = render(value)
        answer = {"status": "success", "return": text[: limit * 2], "length": len(text)}
    except BaseException as exc:
        if os.getpid() != me:
            os._exit(1)  # a process the tool forked: only the original answers
        status, message = classify(exc)
        tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
        answer = {"status": status, "message": message, "traceback": "".join(tb)[-8000:]}
    if os.getpid() != me:
        os._exit(0)
    answer["isolation"] = isolation
    sys.stdout.flush()
    sys.stderr.flush()
    _answer(result_fd, answer)
    # threads the tool left behind must not keep the run alive
    os._exit(0)


def _answer(fd: int, answer: dict[str, Any]) -> None:
    data = json.dumps(answer).encode()
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
    os.close(fd)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
