#!/usr/bin/env python3
"""Runs the guides' commands (docs/guides/*.md), as a reader would, and fails on any that fails.

usage: guides.py --lltrace BIN [--prefix LLAMA_PREFIX] [--keep] [GUIDE.md ...]

A guide marks each fenced block by its info string (the words after the opening ```):
  ```sh run            run it (bash), in order with the guide's other blocks, in one shell:
                       variables, the folder and background jobs carry from block to block
  ```sh skip REASON    show it, never run it: it needs what the test machine lacks (a GPU,
                       PyTorch); the reason is printed
  ```text expect       the output of the run block above it: every non-empty line must be a
                       line of that block's output (stdout and stderr); "..." in a line matches
                       any text, so figures that vary can be left out; runs of blanks count as one
  ```python file NAME  written to NAME in the folder, where it is reached (not run by itself);
                       a .py file must compile, even when no block can run it here
Every sh block of a guide must say run or skip, so no command goes unchecked; other blocks
(output shown without expect, SQL, C) are prose.

Each guide runs in a temporary folder of its own, holding links to the checkout's docs/, tests/
and bench/ (so a guide's `python3 tests/...` and `--map docs/maps/...` work as from the
checkout), with lltrace's folder first on PATH, LLAMA_PREFIX set to the llama.cpp install
lltrace was built against and PORT to a free port. A guide that runs past 180 s fails.
"""
import argparse, os, re, shutil, signal, socket, subprocess, sys, tempfile, time

TIMEOUT_S = 180
FENCE = re.compile(r'^```(\S*)\s*(.*?)\s*$')


class Block:
    def __init__(self, lang, info, text, line):
        self.lang, self.info, self.text, self.line = lang, info, text, line
        self.kind = info.split(' ', 1)[0] if info else ''
        self.arg = info.split(' ', 1)[1].strip() if ' ' in info else ''
        self.expect = None  # the expect block that follows a run block


def parse(path):
    """The guide's fenced blocks; a run block takes the expect block after it."""
    blocks, cur, errors = [], None, []
    for n, line in enumerate(open(path, encoding='utf-8').read().split('\n'), 1):
        if cur is None:
            m = FENCE.match(line)
            if m and line.startswith('```'):
                cur = Block(m.group(1), m.group(2), [], n)
        elif line.strip() == '```':
            cur.text = '\n'.join(cur.text) + '\n'
            blocks.append(cur)
            cur = None
        else:
            cur.text.append(line)
    if cur is not None:
        errors.append('%s:%d: a block that never closes' % (path, cur.line))
    kept = []
    for b in blocks:
        where = '%s:%d' % (path, b.line)
        if b.lang in ('sh', 'bash', 'console') and b.kind not in ('run', 'skip'):
            errors.append('%s: a sh block must be marked run or skip (```sh run)' % where)
        elif b.kind == 'skip' and not b.arg:
            errors.append('%s: a skipped block must say why (```sh skip needs a GPU)' % where)
        elif b.kind == 'expect':
            if not kept or kept[-1].kind != 'run' or kept[-1].expect is not None:
                errors.append('%s: an expect block must follow a run block' % where)
            else:
                kept[-1].expect = b
            continue
        elif b.kind == 'file' and not re.fullmatch(r'[\w.-]+', b.arg):
            errors.append('%s: a file block needs a plain file name (```python file x.py)' % where)
        elif b.kind == 'file' and b.arg.endswith('.py'):
            try:  # a script the machine cannot run (no PyTorch) is at least valid Python
                compile(b.text, b.arg, 'exec')
            except SyntaxError as e:
                errors.append('%s: %s is not valid Python: %s' % (where, b.arg, e))
        if b.kind in ('run', 'skip', 'file'):
            kept.append(b)
    return kept, errors


def squeeze(s):
    return re.sub(r'\s+', ' ', s.strip())


def matches(pattern, lines):
    """Whether some output line is the pattern, '...' standing for any text; runs of blanks
    count as one, so a table's column widths may change."""
    rx = re.compile('.*'.join(re.escape(p) for p in squeeze(pattern).split('...')) + r'\Z')
    return any(rx.match(squeeze(l)) for l in lines)


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def run_guide(path, args, root):
    blocks, errors = parse(path)
    if errors:
        return errors, 0, 0, 0
    work = tempfile.mkdtemp(prefix='lltrace-guide-')
    for d in ('docs', 'tests', 'bench'):
        os.symlink(os.path.join(root, d), os.path.join(work, d))
    gdir = os.path.join(work, '.guide')
    os.mkdir(gdir)
    # one shell for the whole guide; an EXIT trap names the block that failed and stops any
    # background job a block left (a server the guide did not get to stop)
    script = ['set -euo pipefail', 'where=start; out=/dev/null',
              'trap \'rc=$?; [ -n "$(jobs -p)" ] && kill $(jobs -p) 2>/dev/null; '
              'if [ $rc != 0 ]; then echo "FAIL $where: exit status $rc; its output:"; tail -n 30 "$out"; fi; exit $rc\' EXIT']
    ran = skipped = checked = 0
    for i, b in enumerate(blocks):
        where = '%s:%d' % (path, b.line)
        if b.kind == 'skip':
            print('guides: %s: skipped: %s' % (where, b.arg))
            skipped += 1
        elif b.kind == 'file':
            with open(os.path.join(work, b.arg), 'w', encoding='utf-8') as f:
                f.write(b.text)
        else:
            src, out = os.path.join(gdir, 'b%d.sh' % i), os.path.join(gdir, 'o%d' % i)
            with open(src, 'w', encoding='utf-8') as f:
                f.write(b.text)
            script += ['where=%s; out=%s' % (sh_quote(where), sh_quote(out)),
                       'source %s >%s 2>&1 </dev/null' % (sh_quote(src), sh_quote(out))]
            ran += 1
    script.append('where=end')
    env = dict(os.environ, PATH=os.path.dirname(os.path.abspath(args.lltrace)) + ':' + os.environ['PATH'],
               PORT=str(free_port()))
    if args.prefix:
        env['LLAMA_PREFIX'] = args.prefix
    t0 = time.time()
    p = subprocess.Popen(['bash', '-c', '\n'.join(script)], cwd=work, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        log, _ = p.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        log, _ = p.communicate()
        errors.append('%s: still running after %d s, stopped' % (path, TIMEOUT_S))
    if p.returncode != 0 and not errors:
        errors.append('%s: a block failed\n%s' % (path, log.rstrip()))
    elif not errors:
        for i, b in enumerate(blocks):
            if b.kind != 'run' or b.expect is None:
                continue
            lines = open(os.path.join(gdir, 'o%d' % i), encoding='utf-8', errors='replace').read().split('\n')
            for want in b.expect.text.split('\n'):
                if want.strip() and not matches(want.rstrip(), lines):
                    errors.append('%s:%d: the output lacks the line %r; it was:\n%s'
                                  % (path, b.expect.line, want.rstrip(), '\n'.join(lines[-30:])))
                    break
            checked += 1
    print('guides: %s: %d blocks run, %d skipped, %d outputs checked, %.1f s'
          % (path, ran, skipped, checked, time.time() - t0))
    if args.keep or errors:
        print('guides: its folder is kept: %s' % work)
    else:
        shutil.rmtree(work, ignore_errors=True)
    return errors, ran, skipped, checked


def sh_quote(s):
    return "'" + s.replace("'", "'\\''") + "'"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--lltrace', required=True, help='the built lltrace binary')
    ap.add_argument('--prefix', help='the llama.cpp install lltrace was built against')
    ap.add_argument('--keep', action='store_true', help="keep each guide's folder")
    ap.add_argument('guides', nargs='*')
    args = ap.parse_args()
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
    guides = args.guides or sorted(os.path.join(root, 'docs', 'guides', g)
                                   for g in os.listdir(os.path.join(root, 'docs', 'guides')) if g.endswith('.md'))
    failures = []
    for g in guides:
        rel = os.path.relpath(g)
        errors, ran, _, _ = run_guide(g if rel.startswith('..') else rel, args, root)
        if ran == 0 and not errors:
            errors = ['%s: no block marked run' % g]
        failures += errors
    for f in failures:
        print('FAIL ' + f)
    sys.exit(1 if failures else 0)


if __name__ == '__main__':
    main()
