#!/usr/bin/env python3
# Prints TCP_NODELAY (0 or 1) of another process's TCP socket, found by its two ports: tcp-nodelay.py PID LOCAL REMOTE
# (IPv4 loopback). The socket is borrowed with pidfd_getfd(2) (Linux >= 5.6, root or ptrace rights), which is the
# only way to read an option of a socket another process owns; the duplicate is closed, the socket left as it was.
import ctypes, os, socket, sys

SYS_PIDFD_OPEN, SYS_PIDFD_GETFD = 434, 438  # the same on x86_64 and arm64 (the unified syscall table)

def inode_of(local: int, remote: int) -> str:
    with open('/proc/net/tcp') as f:
        for line in f.readlines()[1:]:
            p = line.split()
            if int(p[1].split(':')[1], 16) == local and int(p[2].split(':')[1], 16) == remote:
                return p[9]
    raise SystemExit(f'no TCP socket {local} -> {remote} in /proc/net/tcp')

def main() -> None:
    pid, local, remote = (int(a) for a in sys.argv[1:4])
    target = f'socket:[{inode_of(local, remote)}]'
    fd = next((int(n) for n in os.listdir(f'/proc/{pid}/fd') if os.readlink(f'/proc/{pid}/fd/{n}') == target), None)
    if fd is None:
        raise SystemExit(f'process {pid} holds no {target}')
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = libc.syscall(SYS_PIDFD_OPEN, pid, 0)
    dup = libc.syscall(SYS_PIDFD_GETFD, pidfd, fd, 0)
    if pidfd < 0 or dup < 0:
        raise SystemExit(f'pidfd_getfd: {os.strerror(ctypes.get_errno())}')
    s = socket.socket(fileno=dup)
    try:
        print(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
    finally:
        s.detach()
        os.close(dup)
        os.close(pidfd)

main()
