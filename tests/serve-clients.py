#!/usr/bin/env python3
# The clients `lltrace serve` must survive, each against a server on 127.0.0.1:PORT, for
# cli-serve-clients.sh. Prints "FAIL ..." lines and exits 1 on any failure.
#   serve-clients.py PORT host      only Host 127.0.0.1:PORT, localhost:PORT, [::1]:PORT answered
#   serve-clients.py PORT slow      a half-sent request (or 20) does not keep another client waiting
#   serve-clients.py PORT noread PATH  a client that never reads its answer does not either
#   serve-clients.py PORT compute   the page is answered while the data is being computed
# No timing threshold decides a verdict: the second client must be answered while the first
# is still open and unanswered (the 60 s socket timeout only keeps a broken server from
# hanging the test).
import socket
import sys

port = int(sys.argv[1])
fails = 0


def fail(msg):
    global fails
    print('FAIL ' + msg)
    fails += 1


def read_all(s):
    """Everything s receives until the server closes it."""
    s.setblocking(True)
    data = b''
    while True:
        b = s.recv(65536)
        if not b:
            return data
        data += b


def request(host, path='/'):
    """One GET with that Host header (None: none); (status, body) once the server closed."""
    s = socket.create_connection(('127.0.0.1', port), timeout=60)
    head = 'GET %s HTTP/1.1\r\n' % path + ('Host: %s\r\n' % host if host is not None else '') + '\r\n'
    s.sendall(head.encode())
    try:
        data = read_all(s)
    except socket.timeout:
        s.close()
        return None, b'no answer in 60 s'
    s.close()
    line, _, rest = data.partition(b'\r\n')
    parts = line.split()
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
    return status, rest.partition(b'\r\n\r\n')[2]


def page_while_open(a, first):
    """The page is answered to a second client while a (the first client) is open and unanswered."""
    status, body = request(good, '/')
    if status != 200 or b'<html' not in body:
        fail('the page while %s: status %s (%r)' % (first, status, body[:80]))
    if not unanswered(a):
        fail('the page was answered only after %s was dealt with' % first)


def unanswered(s):
    """True when s is still open and the server sent nothing on it."""
    s.setblocking(False)
    try:
        got = s.recv(1)
    except BlockingIOError:
        return True
    except OSError as e:
        print('first client: %s' % e)
        return False
    print('first client: %s' % ('closed by the server' if not got else 'answered'))
    return False


good = '127.0.0.1:%d' % port

if sys.argv[2] == 'host':
    # a page whose name rebinds to 127.0.0.1 sends its own name: refused
    for host, want in [('evil.example:%d' % port, 403), ('evil.example', 403), (None, 403),
                       ('127.0.0.1:%d' % (port + 1 if port < 65535 else 1), 403), ('127.0.0.1', 403),
                       ('127.0.0.1:%d.evil.example' % port, 403),
                       (good, 200), ('localhost:%d' % port, 200), ('LocalHost:%d' % port, 200), ('[::1]:%d' % port, 200)]:
        for path in ['/', '/data.json']:
            status, body = request(host, path)
            if status != want:
                fail('GET %s with Host %r: status %s, wanted %d' % (path, host, status, want))
            elif want == 403 and (b'"run"' in body or b'waiting' in body or b'<script' in body):
                fail('GET %s with Host %r: refused, but the body holds data' % (path, host))
    # the header's name is not case-sensitive, its value may have spaces around
    s = socket.create_connection(('127.0.0.1', port), timeout=60)
    s.sendall(('GET / HTTP/1.1\r\nhOsT:   %s \r\n\r\n' % good).encode())
    first = s.recv(64)
    s.close()
    if not first.startswith(b'HTTP/1.1 200'):
        fail('"hOsT:   %s ": %r, wanted 200' % (good, first))

elif sys.argv[2] == 'slow':
    # the first client sends the start of a request and never its end
    a = socket.create_connection(('127.0.0.1', port), timeout=60)
    a.sendall(('GET / HTTP/1.1\r\nHost: %s\r\n' % good).encode())
    page_while_open(a, 'the first client (half a request)')
    # and the first is served once it finishes its request
    try:
        a.sendall(b'\r\n')
        data = read_all(a)
    except OSError as e:
        data = str(e).encode()
    a.close()
    if not data.startswith(b'HTTP/1.1 200'):
        fail('the first client, once its request was whole: %r' % data[:80])
    # more half-sent requests than the server serves at once (16): the oldest give their place
    stuck = []
    for _ in range(20):
        h = socket.create_connection(('127.0.0.1', port), timeout=60)
        h.sendall(('GET / HTTP/1.1\r\nHost: %s\r\n' % good).encode())
        stuck.append(h)
    status, body = request(good, '/data.json')
    if status != 200:
        fail('a client after 20 that sent half a request: status %s (%r)' % (status, body[:80]))
    if not unanswered(stuck[-1]):
        fail('the last of the 20 half-sent requests was dropped before the client after it was answered')
    for h in stuck:
        h.close()

elif sys.argv[2] == 'noread':
    # the first client asks for a response larger than the socket buffers can hold and never
    # reads it: a small receive buffer, set before connecting
    path = sys.argv[3]
    a = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    a.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    a.settimeout(60)
    a.connect(('127.0.0.1', port))
    a.sendall(('GET %s HTTP/1.1\r\nHost: %s\r\n\r\n' % (path, good)).encode())
    # a few requests, each answered in full while the first is stuck
    for i in range(3):
        status, body = request(good, path)
        if status != 200 or not body.startswith(b'{'):
            fail('client %d while the first never reads: status %s (%r)' % (i + 2, status, body[:80]))
            break
    a.close()
    # the premise: the answer is larger than what the socket buffers take from a server before
    # a client that never reads, measured here on a pair of this machine's sockets
    l = socket.socket()
    l.bind(('127.0.0.1', 0))
    l.listen()
    r = socket.socket()
    r.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    r.connect(l.getsockname())
    w, _ = l.accept()
    w.setblocking(False)
    taken = 0
    try:
        while True:
            taken += w.send(b'x' * 65536)
    except BlockingIOError:
        pass
    if status == 200 and len(body) <= taken:
        fail('the answer (%d bytes) fits in the socket buffers (%d bytes): the test proves nothing' % (len(body), taken))

elif sys.argv[2] == 'compute':
    # on a server that has not computed the data yet (a long run: a second or so), the first
    # client asks for it, and the second for the page meanwhile
    a = socket.create_connection(('127.0.0.1', port), timeout=60)
    a.sendall(('GET /data.json HTTP/1.1\r\nHost: %s\r\n\r\n' % good).encode())
    page_while_open(a, 'the data (being computed)')
    data = read_all(a)
    if not data.startswith(b'HTTP/1.1 200') or b'"tokens"' not in data:
        fail('the data, once computed: %r' % data[:80])

else:
    print('usage: serve-clients.py PORT host|slow|noread|compute')
    sys.exit(2)

sys.exit(1 if fails else 0)
