#!/usr/bin/env python3
"""The command reference (docs/commands/) cannot drift from the commands' --help.

usage: reference.py LLTRACE REPO [--update]

Checks, and says each difference in one line:
  1. every command that `lltrace --help` lists has its page docs/commands/<name>.md, and every
     page there (but README.md, the index) is a command's;
  2. each page holds its command's `--help` verbatim, between the lines
     <!-- lltrace NAME --help: begin ... --> and <!-- lltrace NAME --help: end -->: an option
     the command lists and the page lacks, or the other way round, is named;
  3. every option the prose gives a command (in `code` and code blocks of the pages, the
     guides, the README and docs/{devices,building,library}.md) is one that command's --help
     names: "`lltrace run --level timing`" and "`profile --by step`" are checked against that
     command; on a command's page a bare "`--seq N`" must be an option of some command (a
     page also tells which options of other commands give what it shows); what follows
     " -- " (exec's PROGRAM), and other programs' options, are not checked.
--update rewrites each page's --help block from the command (and makes a page, with only
its --help, for a command that has none): run it after changing a command's options, then
explain the new options in the page's prose.
"""
import glob, os, re, subprocess, sys

OPT = re.compile(r'(?<![\w-])(--?[A-Za-z][A-Za-z0-9-]*)')
SPAN = re.compile(r'`([^`\n]+)`')
PROSE = ['README.md', 'docs/devices.md', 'docs/building.md', 'docs/library.md']


def begin(name): return '<!-- lltrace %s --help: begin (tests/reference.py checks it; --update rewrites it) -->' % name
def end(name): return '<!-- lltrace %s --help: end -->' % name


def helptext(lltrace, *args):
    p = subprocess.run([lltrace, *args, '--help'], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        sys.exit('FAIL lltrace %s --help: exit status %d' % (' '.join(args), p.returncode))
    return p.stdout.rstrip('\n')


def commands(lltrace):
    text = helptext(lltrace).split('\n')
    at = text.index('commands:')
    return [l.split()[0] for l in text[at + 1:] if l.startswith('  ') and l.strip()]


def block(name, help):
    return '%s\n```text\n%s\n```\n%s' % (begin(name), help, end(name))


def read_block(name, page):
    """The --help block of a page: (its text, its span in the page) or (None, None)."""
    m = re.search(re.escape(begin(name)) + r'\n```text\n(.*?)\n```\n' + re.escape(end(name)), page, re.S)
    return (m.group(1), m.span()) if m else (None, None)


def uses(text, own, cmds):
    """(line, command, option) for every option the text gives a command."""
    out = []
    lines = text.split('\n')
    fenced = False
    for n, line in enumerate(lines, 1):
        if line.startswith('```'):
            fenced = not fenced
            continue
        pieces = [(line, False)] if fenced else [(s, True) for s in SPAN.findall(line)]
        for piece, span in pieces:
            for seg in re.split(r'\|\||&&|[|;]|\s&\s', piece):
                seg = seg.split(' -- ')[0]
                m = re.search(r'(?:^|[\s/$(])lltrace\s+(\w+)(.*)', seg)
                words = seg.split()
                if m and m.group(1) in cmds:
                    cmd, rest = m.group(1), m.group(2)
                elif words and words[0] in cmds and span:
                    cmd, rest = words[0], seg.split(None, 1)[1] if len(words) > 1 else ''
                elif words and words[0].startswith('-') and span and own:
                    cmd, rest = '*', seg
                else:
                    continue
                out += [(n, cmd, o) for o in OPT.findall(rest)]
    return out


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    lltrace, repo, update = sys.argv[1], sys.argv[2], '--update' in sys.argv[3:]
    pages = os.path.join(repo, 'docs', 'commands')
    cmds = commands(lltrace)
    helps = {c: helptext(lltrace, c) for c in cmds}
    opts = {c: set(OPT.findall(h)) | {'-h', '--help'} for c, h in helps.items()}
    for c, h in helps.items():  # 'lltrace debug [run options]': run's options are its own too
        if '[run options]' in h and 'run' in opts:
            opts[c] |= opts['run']
    opts['*'] = set().union(*opts.values())  # a bare option on a page: any command's
    fails = []
    for c in cmds:
        path = os.path.join(pages, c + '.md')
        rel = os.path.relpath(path, repo)
        if not os.path.exists(path):
            if update:
                open(path, 'w').write('# `lltrace %s`\n\n%s\n' % (c, block(c, helps[c])))
                print('reference: made %s: explain the command there' % rel)
                continue
            fails.append("command '%s' has no page %s (tests/reference.py --update makes one with its --help)" % (c, rel))
            continue
        page = open(path).read()
        shown, where = read_block(c, page)
        if shown is None:
            if update:  # after the title
                t = page.index('\n') + 1
                page = page[:t] + '\n' + block(c, helps[c]) + '\n' + page[t:]
                open(path, 'w').write(page)
                print('reference: put the --help of %s into %s' % (c, rel))
                continue
            fails.append('%s: no --help block (%s ... %s)' % (rel, begin(c), end(c)))
        elif shown != helps[c]:
            if update:
                open(path, 'w').write(page[:where[0]] + block(c, helps[c]) + page[where[1]:])
                print('reference: updated the --help of %s in %s' % (c, rel))
                continue
            have = set(OPT.findall(shown))
            for o in sorted(opts[c] - have - {'-h', '--help'}):
                fails.append("lltrace %s --help lists %s, which %s lacks" % (c, o, rel))
            for o in sorted(have - opts[c]):
                fails.append("%s lists %s, which lltrace %s --help lacks" % (rel, o, c))
            fails.append('%s: its --help block differs from the command\'s (python3 tests/reference.py %s %s --update '
                         'rewrites it)' % (rel, lltrace, repo))
    for path in sorted(glob.glob(os.path.join(pages, '*.md'))):
        name = os.path.basename(path)[:-3]
        if name != 'README' and name not in cmds:
            fails.append("%s documents no command: 'lltrace --help' lists none named '%s'"
                         % (os.path.relpath(path, repo), name))
    # the prose: a page's own command, then every guide and page that names commands
    prose = [(p, os.path.basename(p)[:-3]) for p in sorted(glob.glob(os.path.join(pages, '*.md')))]
    prose += [(p, None) for p in sorted(glob.glob(os.path.join(repo, 'docs', 'guides', '*.md')))]
    prose += [(os.path.join(repo, p), None) for p in PROSE]
    for path, own in prose:
        text = open(path).read()
        if own in cmds:  # the --help block is checked above
            shown, where = read_block(own, text)
            if where:
                text = text[:where[0]] + '\n' * text[where[0]:where[1]].count('\n') + text[where[1]:]
        for n, c, o in uses(text, own if own in cmds else None, cmds):
            if o not in opts[c]:
                fails.append("%s:%d: %s is not an option of %s" % (os.path.relpath(path, repo), n, o,
                             "any command ('lltrace CMD --help')" if c == '*' else "'lltrace %s' (its --help)" % c))
    for f in fails:
        print('FAIL ' + f)
    if not fails and not update:
        print('reference: %d commands, each page holds its --help; every option the docs give a command is one' % len(cmds))
    sys.exit(1 if fails else 0)


if __name__ == '__main__':
    main()
