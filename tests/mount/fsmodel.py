# SPDX-License-Identifier: Apache-2.0
"""A reference model of what hpcops-mount must do, operation by operation.

The model holds what a mount's user can reason about: the objects in the
bucket (key -> bytes), the directories made with mkdir that exist only on
this node, the files being written, and the open handles with their state,
plus the mount's opt-in flags. Each operation returns an Expect (the errno,
or the errnos, it may fail with, and the value it must return on success)
and updates the model as the mount must update itself. test_model.py runs
the same operations on a real mount and compares; test_conformance.py uses
it for nothing, but checks the same rules one by one.

The namespace is computed from the state each time, as Mountpoint's
reference model (mountpoint-s3/tests/reftests/reference.rs) does, so that
there is one definition of how keys become files and directories:

- keys are split on '/'; a directory exists while any key lies under it;
  a name that is both a file and a directory is the directory;
- a component that is empty, '.', '..' or over 255 bytes is not a name: a
  key with such a component is hidden (the directories above it remain);
- a key ending in '/' is a directory marker: it makes the directory exist;
- a mkdir'd directory is local until something is written under it (by this
  mount or by anyone); from then on it exists only as long as keys do
  (Mountpoint's doc/SEMANTICS.md, "Directories");
- a file being written (or made by mknod and not yet written) is visible on
  this mount only, as a file, until its close (or fsync) makes the object.

Semantics (DESIGN.md's table, fs/README.md, and issue 11), in short:
reads of any object; a new file written sequentially from offset 0 (EINVAL
for any other offset, and for a write after fsync); one writer per file
(EPERM for a second); a file being written cannot be opened for reading
(EBUSY) nor unlinked (EPERM); close() returns after the object exists, an
empty one too; O_RDWR on an existing object opens, reads read, and a write
fails with EPERM; --allow-overwrite replaces with O_TRUNC only;
--allow-append appends with O_APPEND; --allow-delete unlinks and removes a
directory held only by its marker; --allow-rename renames files (EXDEV for
directories); names over 255 bytes ENAMETOOLONG; a key over 1024 bytes
cannot exist: lookup ENOENT, mkdir local, creating a file ENAMETOOLONG.

Decisions where those leave it open (Mountpoint's documented behaviour):
fsync completes the object, which is then readable and deletable before
the writer closes; O_TRUNC (or O_APPEND) of a file open for reading here is EPERM ("you
cannot overwrite files that are currently being read"); a directory made
by mkdir follows S3 once anything was written under it (gone with its last
key); a file made by mknod and not written is local (unlink EPERM, open
for reading EBUSY); open(O_TRUNC) and close with nothing written leaves an
empty object; a read on the O_RDWR handle that writes a new file may
return what the kernel holds (EBADF or EBUSY otherwise).

Where a rule leaves the order of two refusals open (both apply), the
Expect accepts either errno. Where the rules say nothing (e.g. what a
local directory becomes when the remote directory above it disappears),
the operation is not applicable (None): the test does not run it.
"""

import errno

NAME_MAX = 255
KEY_MAX = 1024
FILE_MODE = 0o644
DIR_MODE = 0o755


def valid_name(c):
    """Can this key component be a file or directory name?"""
    b = c.encode("utf-8", "surrogateescape")
    return 0 < len(b) <= NAME_MAX and c not in (".", "..") and "\0" not in c


def key_of(path):
    """The S3 key of a path (a tuple of components under the mount root)."""
    return "/".join(path)


def key_len(path):
    return len(key_of(path).encode("utf-8", "surrogateescape"))


def name_len(c):
    return len(c.encode("utf-8", "surrogateescape"))


def ename(e):
    return errno.errorcode.get(e, str(e)) if e else "OK"


class Expect:
    """What an operation must do: fail with one of errs (a set; 0 means
    success), and on success return value (or one of alts)."""

    def __init__(self, err=0, value=None, errs=None, alts=None, note=""):
        self.errs = set(errs) if errs is not None else {err}
        self.value = value
        self.alts = alts  # list of acceptable values, None: only value
        self.note = note

    def accepts(self, err, value):
        if err not in self.errs:
            return False
        if err != 0:
            return True
        if self.alts is not None:
            return value in self.alts
        return self.value is None or value == self.value

    def describe(self):
        errs = "|".join(sorted(ename(e) for e in self.errs))
        out = errs
        if 0 in self.errs:
            if self.alts is not None:
                out += " value in %s" % short(self.alts)
            elif self.value is not None:
                out += " value %s" % short(self.value)
        if self.note:
            out += " (%s)" % self.note
        return out


def short(x):
    r = repr(x)
    if len(r) > 160:
        r = r[:160] + "...(%d chars)" % len(r)
    return r


class Obj:
    def __init__(self, data, version, mtime=None):
        self.data = bytes(data)
        self.version = version
        self.mtime = mtime  # the time kept by utimens while written, or None


class Dir:
    def __init__(self):
        self.children = {}
        self.local = False    # made by mkdir and nothing written under it yet
        self.remote = False   # some key lies under it


class File:
    def __init__(self, path, obj=None, local=False):
        self.path = path
        self.obj = obj        # the object, or None for a file not yet written
        self.local = local    # being written here as a new file (or mknod'd)


class Handle:
    """An open file description.

    kind: 'read' (reads an object), 'rdwr' (O_RDWR on an existing object:
    reads read, a write fails), 'write' (writes a file). acc: the access
    mode the kernel enforces ('r', 'w', 'rw').
    """

    def __init__(self, path, kind, acc):
        self.path = path
        self.kind = kind
        self.acc = acc
        self.snapshot = b""     # read: the object's bytes at open
        self.version = None     # read: the object's version at open
        self.did_read = False
        self.write_failed = False  # rdwr: a write was refused before any read
        self.data = bytearray()  # write: the bytes of the object at close
        self.append = False     # write: O_APPEND on an existing object
        self.wrote = False      # write: a write (or truncate) happened
        self.synced = False     # write: fsync completed the object
        self.mtime = None       # write: a time set by utimens, until a write


class Model:
    def __init__(self, allow_overwrite=False, allow_delete=False,
                 allow_append=False, allow_rename=False):
        self.allow_overwrite = allow_overwrite
        self.allow_delete = allow_delete
        self.allow_append = allow_append
        self.allow_rename = allow_rename
        self.objects = {}       # key -> Obj
        self.local_dirs = set()  # paths made by mkdir, not (yet) in S3
        self.created = set()    # paths made by mknod, not opened yet
        self.writing = {}       # path -> hid of the handle writing it
        self.handles = {}       # hid -> Handle
        self.version = 0

    # ---- the namespace ----

    def tree(self):
        """The directory tree the mount must show (a Dir)."""
        root = Dir()
        root.remote = True
        for key in sorted(self.objects):
            comps = key.split("/")
            d = root
            ok = True
            for c in comps[:-1]:
                if not valid_name(c):
                    ok = False
                    break
                n = d.children.get(c)
                if not isinstance(n, Dir):
                    n = Dir()  # a directory shadows a file of the same name
                    d.children[c] = n
                n.remote = True
                d = n
            if not ok:
                continue
            leaf = comps[-1]
            if leaf == "" or not valid_name(leaf):
                continue  # a marker ('d/'), or a hidden name
            if not isinstance(d.children.get(leaf), Dir):
                d.children[leaf] = File(tuple(comps), self.objects[key])
        for path in sorted(self.local_dirs, key=len):
            parent = self._node_in(root, path[:-1])
            if not isinstance(parent, Dir):
                continue  # not reachable: callers keep this from happening
            n = parent.children.get(path[-1])
            if not isinstance(n, Dir):
                n = Dir()  # a local directory wins over a file too
                parent.children[path[-1]] = n
            n.local = True
        for path in sorted(set(self.writing) | self.created):
            parent = self._node_in(root, path[:-1])
            if not isinstance(parent, Dir):
                continue
            n = parent.children.get(path[-1])
            if isinstance(n, Dir):
                continue
            if n is None:
                parent.children[path[-1]] = File(path, None, local=True)
            # an object being overwritten stays the File of its object
        return root

    @staticmethod
    def _node_in(root, path):
        n = root
        for c in path:
            if not isinstance(n, Dir):
                return None
            n = n.children.get(c)
            if n is None:
                return None
        return n

    def lookup(self, path, tree=None):
        """(node, 0) or (None, errno) as path resolution on the mount gives."""
        n = tree or self.tree()
        for c in path:
            if not isinstance(n, Dir):
                return None, errno.ENOTDIR
            if name_len(c) > NAME_MAX:
                return None, errno.ENAMETOOLONG
            n = n.children.get(c)
            if n is None:
                return None, errno.ENOENT
        return n, 0

    def _parent(self, path, tree):
        """(parent Dir, 0) or (None, errno) for creating path[-1]."""
        p, err = self.lookup(path[:-1], tree)
        if err:
            return None, err
        if not isinstance(p, Dir):
            return None, errno.ENOTDIR
        return p, 0

    def dirs(self):
        """Every directory path (root first)."""
        out = []

        def walk(d, path):
            out.append(path)
            for name, n in sorted(d.children.items()):
                if isinstance(n, Dir):
                    walk(n, path + (name,))
        walk(self.tree(), ())
        return out

    def files(self):
        """Every file path."""
        out = []

        def walk(d, path):
            for name, n in sorted(d.children.items()):
                if isinstance(n, Dir):
                    walk(n, path + (name,))
                else:
                    out.append(path + (name,))
        walk(self.tree(), ())
        return out

    def listing(self, d):
        return sorted((name, isinstance(n, Dir)) for name, n in d.children.items())

    def size_of(self, path, node):
        """st_size a file must show."""
        hid = self.writing.get(path)
        if hid is not None:
            return len(self.handles[hid].data)
        if node.obj is None:
            return 0
        return len(node.obj.data)

    def mtime_of(self, path, node):
        """A kept st_mtime the file must show, or None (any time)."""
        hid = self.writing.get(path)
        if hid is not None:
            return self.handles[hid].mtime
        return node.obj.mtime if node.obj is not None else None

    def busy(self, path):
        return path in self.writing or path in self.created

    def readers(self, path):
        """Handles reading path's object on this mount."""
        return [h for h in self.handles.values()
                if h.path == path and h.kind in ("read", "rdwr")]

    # ---- invariants the generator and shrinker rely on ----

    def _reachable_locals(self):
        """False if a local directory or a file being written is no longer
        reachable (its parent directory vanished from S3): the rules leave
        that open, so operations leading there are not applicable."""
        tree = self.tree()
        for path in list(self.local_dirs) + list(self.writing) + list(self.created):
            if not isinstance(self._node_in(tree, path[:-1]), Dir):
                return False
        return True

    def _snapshot(self):
        return (dict(self.objects), set(self.local_dirs), set(self.created),
                dict(self.writing), self.version)

    def _restore(self, s):
        (self.objects, self.local_dirs, self.created, self.writing,
         self.version) = s

    def _guarded(self, fn):
        """Run a state change; undo it and answer None if it would leave a
        local node unreachable."""
        s = self._snapshot()
        r = fn()
        if r is not None and not self._reachable_locals():
            self._restore(s)
            return None
        return r

    def _made_remote(self, key):
        """A key now exists: the local directories above it are S3's now."""
        comps = key.split("/")
        for i in range(1, len(comps)):
            self.local_dirs.discard(tuple(comps[:i]))

    def _new_version(self):
        self.version += 1
        return self.version

    def _commit(self, h):
        """The object of a write handle now exists (close or fsync)."""
        key = key_of(h.path)
        self.objects[key] = Obj(h.data, self._new_version(), h.mtime)
        self.writing.pop(h.path, None)
        self._made_remote(key)

    # ---- operations on the mount ----
    # Each returns an Expect, or None when not applicable in this state.

    def create(self, path, hid, mode):
        """open(path, O_CREAT | ...): mode 'w' (O_WRONLY), 'wx' (+O_EXCL),
        'wt' (+O_TRUNC), 'rwc' (O_RDWR)."""
        if not path:
            return None  # the mount's root
        tree = self.tree()
        parent, err = self._parent(path, tree)
        if err:
            return Expect(err)
        if name_len(path[-1]) > NAME_MAX:
            return Expect(errno.ENAMETOOLONG)
        n = parent.children.get(path[-1])
        if isinstance(n, Dir):
            return Expect(errno.EEXIST if mode == "wx" else errno.EISDIR)
        if n is not None:
            if mode == "wx":
                return Expect(errno.EEXIST)
            return self._open_existing(path, n, hid,
                                       {"w": "w", "wt": "wt", "rwc": "rw"}[mode])
        if key_len(path) > KEY_MAX:
            return Expect(errno.ENAMETOOLONG, note="key over 1024 bytes")
        h = Handle(path, "write", "rw" if mode == "rwc" else "w")
        self.handles[hid] = h
        self.writing[path] = hid
        return Expect(0)

    def open(self, path, hid, mode):
        """open(path) without O_CREAT: mode 'r' (O_RDONLY), 'rd' (O_RDONLY |
        O_DIRECT), 'rw' (O_RDWR), 'w' (O_WRONLY), 'wt' (O_WRONLY | O_TRUNC),
        'a' (O_WRONLY | O_APPEND)."""
        n, err = self.lookup(path)
        if err:
            return Expect(err)
        if isinstance(n, Dir):
            if mode in ("r", "rd"):
                return None  # opening a directory for reading: not a file op
            return Expect(errno.EISDIR)
        return self._open_existing(path, n, hid, mode)

    def _open_existing(self, path, n, hid, mode):
        if mode in ("r", "rd"):
            if self.busy(path):
                return Expect(errno.EBUSY, note="file being written")
            h = Handle(path, "read", "r")
            h.snapshot = n.obj.data
            h.version = n.obj.version
            self.handles[hid] = h
            return Expect(0)
        if path in self.writing:
            if mode == "rw":
                return Expect(errs={errno.EPERM, errno.EBUSY},
                              note="second open of a file being written")
            return Expect(errno.EPERM, note="second writer")
        if path in self.created:
            if mode == "a":
                return None
            # the file mknod made: this open writes it
            self.created.discard(path)
            h = Handle(path, "write", "rw" if mode == "rw" else "w")
            self.handles[hid] = h
            self.writing[path] = hid
            return Expect(0)
        if mode == "rw":
            h = Handle(path, "rdwr", "rw")
            h.snapshot = n.obj.data
            h.version = n.obj.version
            self.handles[hid] = h
            return Expect(0)
        if mode == "wt":
            if not self.allow_overwrite:
                return Expect(errno.EPERM, note="overwrite needs --allow-overwrite")
            if self.readers(path):
                # Mountpoint: "You cannot overwrite files that are currently
                # being read" (a reader would see the file shrink under it)
                return Expect(errno.EPERM, note="overwrite of a file being read")
            h = Handle(path, "write", "w")
            self.handles[hid] = h
            self.writing[path] = hid
            return Expect(0)
        if mode == "a":
            if not self.allow_append:
                return Expect(errno.EPERM, note="append needs --allow-append")
            if self.readers(path):
                # the append replaces the object; a reader pinned to the
                # old version would fail mid-read (If-Match), so refuse
                return Expect(errno.EPERM, note="append to a file being read")
            h = Handle(path, "write", "w")
            h.append = True
            h.data = bytearray(n.obj.data)
            self.handles[hid] = h
            self.writing[path] = hid
            return Expect(0)
        return Expect(errno.EPERM, note="O_WRONLY without O_TRUNC on an object")

    def mknod(self, path):
        """mknod(path, S_IFREG): a new, empty file to be opened and written."""
        if not path:
            return None  # the mount's root
        tree = self.tree()
        parent, err = self._parent(path, tree)
        if err:
            return Expect(err)
        if name_len(path[-1]) > NAME_MAX:
            return Expect(errno.ENAMETOOLONG)
        if path[-1] in parent.children:
            return Expect(errno.EEXIST)
        if key_len(path) > KEY_MAX:
            return Expect(errno.ENAMETOOLONG, note="key over 1024 bytes")
        self.created.add(path)
        return Expect(0)

    def next_offset(self, hid):
        """Where a sequential write on hid goes now: the handle's size, or
        None for an O_APPEND handle (the kernel writes at the end); 0 for a
        handle that does not write. KeyError if there is no such handle."""
        h = self.handles[hid]
        if h.kind != "write":
            return 0
        return None if h.append else len(h.data)

    def write(self, hid, off, data):
        """pwrite(fd, data, off), or write(fd, data) when off is None."""
        h = self.handles.get(hid)
        if h is None:
            return None
        if h.acc == "r":
            return Expect(errno.EBADF)
        if h.kind == "rdwr":
            if h.did_read:
                return Expect(errs={errno.EPERM, errno.EBADF},
                              note="write on an O_RDWR handle that read")
            h.write_failed = True
            return Expect(errno.EPERM, note="write to an existing object without O_TRUNC")
        if h.synced:
            return Expect(errno.EINVAL, note="write after fsync")
        if not h.append and off != len(h.data):
            return Expect(errno.EINVAL, note="out-of-order write at %d, size %d"
                          % (off, len(h.data)))
        h.data += data
        h.wrote = True
        h.mtime = None
        return Expect(0, value=len(data))

    def read(self, hid, off, n):
        h = self.handles.get(hid)
        if h is None:
            return None
        if h.acc == "w":
            return Expect(errno.EBADF)
        if h.kind == "write":
            # The handle writing a file (O_RDWR) does not read it; but the
            # kernel answers some reads itself (past its idea of the size, or
            # from pages the writes left in the page cache): those bytes.
            return Expect(errs={0, errno.EBADF, errno.EBUSY},
                          value=bytes(h.data[off:off + n]),
                          note="read on the handle writing the file")
        h.did_read = True
        old = h.snapshot[off:off + n]
        obj = self.objects.get(key_of(h.path))
        # the first call was a refused write: whether the handle still reads
        # is left open (Mountpoint decides what a handle is at its first call)
        extra = {errno.EBADF} if h.write_failed else set()
        if obj is not None and obj.version == h.version:
            return Expect(errs={0} | extra, value=old)
        # The object changed or went away since the open: the old bytes, the
        # new ones, or an error; never a mix (Mountpoint's consistency rule).
        alts = [old]
        if obj is not None:
            alts.append(obj.data[off:off + n])
        return Expect(errs={0, errno.ESTALE, errno.EIO, errno.ENOENT} | extra, alts=alts,
                      note="object changed since open")

    def fsync(self, hid):
        h = self.handles.get(hid)
        if h is None:
            return None
        if h.kind == "write" and not h.synced:
            if h.append and not h.wrote:
                return None  # nothing to complete: the rules say nothing
            self._commit(h)
            h.synced = True
        return Expect(0)

    def close(self, hid):
        h = self.handles.pop(hid, None)
        if h is None:
            return None
        if h.kind == "write" and not h.synced:
            if h.append and not h.wrote:
                self.writing.pop(h.path, None)  # the object is left alone
            else:
                self._commit(h)
        return Expect(0)

    def ftruncate(self, hid, grow):
        """ftruncate(fd, size + grow) on a handle writing a file."""
        h = self.handles.get(hid)
        if h is None or h.kind != "write" or h.append:
            return None
        if h.synced:
            return None
        h.data += bytes(grow)
        h.wrote = True
        h.mtime = None
        return Expect(0)

    def truncate(self, path, size):
        """truncate(path, size)."""
        if not path:
            return None  # the mount's root
        n, err = self.lookup(path)
        if err:
            return Expect(err)
        if isinstance(n, Dir):
            return Expect(errno.EISDIR)
        hid = self.writing.get(path)
        if hid is not None:
            h = self.handles[hid]
            if h.append or size < len(h.data):
                return None
            h.data += bytes(size - len(h.data))
            h.wrote = True
            h.mtime = None
            return Expect(0)
        if path in self.created:
            return None
        if any(h.path == path and h.kind == "write" and h.synced
               for h in self.handles.values()):
            # an object, and a file whose writer fsynced: either refusal
            return Expect(errs={errno.EPERM, errno.EINVAL} |
                          ({0} if size == len(n.obj.data) else set()),
                          note="truncate after fsync")
        if size == len(n.obj.data):
            return Expect(errs={0, errno.EPERM}, note="truncate to the same size")
        return Expect(errno.EPERM, note="truncate of an object")

    def utime(self, path, t):
        if not path:
            return None  # the mount's root
        n, err = self.lookup(path)
        if err:
            return Expect(err)
        if isinstance(n, Dir) or path in self.created:
            return None
        hid = self.writing.get(path)
        if hid is not None:
            self.handles[hid].mtime = t
            return Expect(0)
        return Expect(errno.EPERM, note="utimens of a closed object")

    def chmod(self, path, mode):
        if not path:
            return None  # the mount's root
        n, err = self.lookup(path)
        if err:
            return Expect(err)
        want = DIR_MODE if isinstance(n, Dir) else FILE_MODE
        return Expect(0 if mode == want else errno.EPERM)

    def stat(self, path):
        """Value: ('d',) or ('f', size, kept mtime or None)."""
        n, err = self.lookup(path)
        if err:
            return Expect(err)
        if isinstance(n, Dir):
            return Expect(0, value=("d",))
        return Expect(0, value=("f", self.size_of(path, n), self.mtime_of(path, n)))

    def listdir(self, path):
        n, err = self.lookup(path)
        if err:
            return Expect(err)
        if not isinstance(n, Dir):
            return Expect(errno.ENOTDIR)
        return Expect(0, value=self.listing(n))

    def mkdir(self, path):
        if not path:
            return None  # the mount's root
        tree = self.tree()
        parent, err = self._parent(path, tree)
        if err:
            return Expect(err)
        if name_len(path[-1]) > NAME_MAX:
            return Expect(errno.ENAMETOOLONG)
        if path[-1] in parent.children:
            return Expect(errno.EEXIST)
        self.local_dirs.add(path)  # local even past 1024 bytes of key
        return Expect(0)

    def rmdir(self, path):
        if not path:
            return None
        n, err = self.lookup(path)
        if err:
            return Expect(err)
        if not isinstance(n, Dir):
            return Expect(errno.ENOTDIR)
        if n.children:
            return Expect(errno.ENOTEMPTY)
        prefix = key_of(path) + "/"
        under = [k for k in self.objects if k.startswith(prefix)]
        if n.local and not under:
            return self._guarded(lambda: self._rmdir_local(path))
        if n.local:
            return None  # local and in S3 at once: the rules say nothing
        if under == [prefix]:
            if not self.allow_delete:
                return Expect(errno.EPERM, note="rmdir of a marker needs --allow-delete")
            return self._guarded(lambda: self._delete_key(prefix))
        return None  # only hidden keys under it: the rules say nothing

    def _rmdir_local(self, path):
        self.local_dirs.discard(path)
        return Expect(0)

    def _delete_key(self, key):
        del self.objects[key]
        return Expect(0)

    def unlink(self, path):
        if not path:
            return None  # the mount's root
        n, err = self.lookup(path)
        if err:
            return Expect(err)
        if isinstance(n, Dir):
            return Expect(errno.EISDIR)
        if self.busy(path):
            return Expect(errno.EPERM, note="unlink of a file being written")
        if not self.allow_delete:
            return Expect(errno.EPERM, note="unlink needs --allow-delete")
        return self._guarded(lambda: self._delete_key(key_of(path)))

    def rename(self, src, dst):
        if not src or not dst:
            return None  # the mount's root
        tree = self.tree()
        sp, err = self._parent(src, tree)
        if err:
            return Expect(err)
        dp, err = self._parent(dst, tree)
        if err:
            return Expect(err)
        if name_len(src[-1]) > NAME_MAX:
            return Expect(errno.ENAMETOOLONG)
        s = sp.children.get(src[-1])
        if s is None:
            return Expect(errno.ENOENT)
        if name_len(dst[-1]) > NAME_MAX:
            return Expect(errno.ENAMETOOLONG)
        d = dp.children.get(dst[-1])
        # the kernel's checks come first (renameat2(2)): onto an ancestor of
        # the source ENOTEMPTY, into the source's own subtree EINVAL
        if len(dst) < len(src) and src[:len(dst)] == dst:
            return Expect(errno.ENOTEMPTY, note="onto an ancestor of the source")
        if len(src) < len(dst) and dst[:len(src)] == src:
            return Expect(errno.EINVAL, note="into the source's own subtree")
        if src == dst:
            return Expect(0)
        if isinstance(s, Dir):
            if d is not None and not isinstance(d, Dir):
                return Expect(errno.ENOTDIR)
            return Expect(errno.EXDEV, note="rename of a directory")
        if isinstance(d, Dir):
            return Expect(errno.EISDIR)
        if src in self.created or dst in self.created:
            return None
        refusals = set()
        if not self.allow_rename:
            refusals.add(errno.EPERM)
        if src in self.writing or dst in self.writing:
            refusals.add(errno.EPERM)
        if d is not None and not self.allow_overwrite:
            refusals.add(errno.EPERM)
        if key_len(dst) > KEY_MAX:
            refusals.add(errno.ENAMETOOLONG)
        if refusals:
            return Expect(errs=refusals)
        return self._guarded(lambda: self._move(key_of(src), key_of(dst)))

    def _move(self, skey, dkey):
        o = self.objects.pop(skey)
        self.objects[dkey] = Obj(o.data, self._new_version(), o.mtime)
        self._made_remote(dkey)
        return Expect(0)

    # ---- changes behind the mount's back (another S3 client) ----

    def _touches_busy(self, key):
        for path in list(self.writing) + list(self.created):
            k = key_of(path)
            if key == k or key.startswith(k + "/"):
                return True
        return False

    def put(self, key, data):
        """PutObject(key) by another client."""
        if self._touches_busy(key):
            return None
        if key.endswith("/") and tuple(key[:-1].split("/")) in self.local_dirs:
            return None  # a marker over a local directory: the rules say nothing

        def do():
            self.objects[key] = Obj(data, self._new_version())
            self._made_remote(key)
            return Expect(0)
        return self._guarded(do)

    def delete(self, key):
        """DeleteObject(key) by another client."""
        if key not in self.objects or self._touches_busy(key):
            return None
        return self._guarded(lambda: self._delete_key(key))

    # ---- the end ----

    def open_handles(self):
        return sorted(self.handles)
