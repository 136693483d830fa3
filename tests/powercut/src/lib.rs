//! A FUSE file system that forgets, on a simulated power cut, everything that was not fsynced.
//!
//! The whole tree lives in memory, in two layers:
//! - per file, its *volatile* data (what `write`, `truncate` and `fallocate` change, what `read`
//!   returns) and its *durable* data (a copy of the volatile data taken by `fsync`/`fdatasync`
//!   of that file, size included);
//! - per folder, its volatile entries (what `create`, `mkdir`, `unlink`, `rmdir` and `rename`
//!   change, what `lookup` and `readdir` see) and its durable entries (a copy taken by
//!   `fsyncdir` of that folder).
//!
//! [`PowerCutFs::cut`] is the power cut: once every file is closed (the caller has killed the
//! writer), it unmounts, resets each volatile layer to its durable one, drops the inodes that
//! the durable tree no longer reaches, and mounts again. A fresh mount has an empty page cache,
//! so nothing the kernel kept survives either.
//!
//! This is the weakest storage a POSIX program may count on: a write reaches stable storage
//! only through an fsync of its file, a name only through an fsync of its folder; a rename
//! across folders is durable in each folder separately. `sync_file_range` has no FUSE request,
//! so it makes nothing durable here, as on a drive with a volatile cache. Writes are not cached
//! by the kernel (no writeback cache is asked for): each `write` reaches this file system
//! before it returns. Locks (`flock`, `fcntl`) are left to the kernel, which keeps them
//! locally. Hard links, symbolic links and special files are refused.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use fuser::{
    BackgroundSession, Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    LockOwner, MountOption, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

/// How long the kernel may cache names and attributes (every change goes through it).
const TTL: Duration = Duration::from_secs(1);
const ROOT: u64 = 1;

/// One file or folder, in both layers.
struct Node {
    dir: bool,
    perm: u16,
    mtime: SystemTime,
    /// File data as reads see it.
    data: Vec<u8>,
    /// Byte range of `data` written since the last fsync (sizes are compared apart).
    dirty: Option<(usize, usize)>,
    /// File data as of the last fsync.
    durable_data: Vec<u8>,
    /// Folder entries as lookups see them.
    entries: BTreeMap<OsString, u64>,
    /// Folder entries as of the last fsyncdir.
    durable_entries: BTreeMap<OsString, u64>,
}

impl Node {
    fn new(dir: bool, perm: u16) -> Node {
        Node {
            dir,
            perm,
            mtime: SystemTime::now(),
            data: Vec::new(),
            dirty: None,
            durable_data: Vec::new(),
            entries: BTreeMap::new(),
            durable_entries: BTreeMap::new(),
        }
    }

    fn touch(&mut self, start: usize, end: usize) {
        self.mtime = SystemTime::now();
        self.dirty = Some(match self.dirty {
            None => (start, end),
            Some((a, b)) => (a.min(start), b.max(end)),
        });
    }
}

/// The two-layer tree and the counters the cut needs.
struct State {
    nodes: HashMap<u64, Node>,
    next_ino: u64,
    /// Files and folders open now (opens and creates less releases).
    open: i64,
    /// Bumped by each cut; a request from an older mount is refused.
    mount: u64,
    /// fsync and fsyncdir requests answered (to show that a program syncs at all).
    syncs: u64,
}

impl State {
    fn new() -> State {
        let mut nodes = HashMap::new();
        nodes.insert(ROOT, Node::new(true, 0o755));
        State { nodes, next_ino: ROOT + 1, open: 0, mount: 0, syncs: 0 }
    }

    fn attr(&self, ino: u64) -> Option<FileAttr> {
        let n = self.nodes.get(&ino)?;
        let size = if n.dir { 4096 } else { n.data.len() as u64 };
        Some(FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: n.mtime,
            mtime: n.mtime,
            ctime: n.mtime,
            crtime: n.mtime,
            kind: if n.dir { FileType::Directory } else { FileType::RegularFile },
            perm: n.perm,
            nlink: if n.dir { 2 } else { 1 },
            uid: 0,
            gid: 0,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        })
    }

    fn child(&self, parent: u64, name: &OsStr) -> Result<u64, Errno> {
        let p = self.nodes.get(&parent).ok_or(Errno::ENOENT)?;
        if !p.dir {
            return Err(Errno::ENOTDIR);
        }
        p.entries.get(name).copied().ok_or(Errno::ENOENT)
    }

    /// Adds a new node named `name` in `parent` (volatile only).
    fn make(&mut self, parent: u64, name: &OsStr, dir: bool, perm: u16) -> Result<u64, Errno> {
        let p = self.nodes.get(&parent).ok_or(Errno::ENOENT)?;
        if !p.dir {
            return Err(Errno::ENOTDIR);
        }
        if p.entries.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        self.nodes.insert(ino, Node::new(dir, perm));
        let p = self.nodes.get_mut(&parent).ok_or(Errno::ENOENT)?;
        p.entries.insert(name.to_os_string(), ino);
        p.mtime = SystemTime::now();
        Ok(ino)
    }

    fn remove(&mut self, parent: u64, name: &OsStr, dir: bool) -> Result<(), Errno> {
        let ino = self.child(parent, name)?;
        let n = self.nodes.get(&ino).ok_or(Errno::ENOENT)?;
        match (dir, n.dir) {
            (true, false) => return Err(Errno::ENOTDIR),
            (false, true) => return Err(Errno::EISDIR),
            (true, true) if !n.entries.is_empty() => return Err(Errno::ENOTEMPTY),
            _ => {}
        }
        let p = self.nodes.get_mut(&parent).ok_or(Errno::ENOENT)?;
        p.entries.remove(name);
        p.mtime = SystemTime::now();
        // The node stays (open descriptors, or the durable tree, may still reach it) until a cut.
        Ok(())
    }

    fn rename(
        &mut self,
        parent: u64,
        name: &OsStr,
        newparent: u64,
        newname: &OsStr,
        flags: RenameFlags,
    ) -> Result<(), Errno> {
        let ino = self.child(parent, name)?;
        let target = match self.child(newparent, newname) {
            Ok(t) => Some(t),
            Err(e) if e == Errno::ENOENT => None,
            Err(e) => return Err(e),
        };
        if flags.contains(RenameFlags::RENAME_EXCHANGE) {
            let Some(target) = target else { return Err(Errno::ENOENT) };
            self.nodes.get_mut(&parent).ok_or(Errno::ENOENT)?.entries.insert(name.to_os_string(), target);
            self.nodes.get_mut(&newparent).ok_or(Errno::ENOENT)?.entries.insert(newname.to_os_string(), ino);
            return Ok(());
        }
        if !(flags - RenameFlags::RENAME_NOREPLACE).is_empty() {
            return Err(Errno::EINVAL);
        }
        if let Some(t) = target {
            if t == ino {
                return Ok(());
            }
            if flags.contains(RenameFlags::RENAME_NOREPLACE) {
                return Err(Errno::EEXIST);
            }
            let (src_dir, dst) = (self.nodes[&ino].dir, &self.nodes[&t]);
            match (src_dir, dst.dir) {
                (true, false) => return Err(Errno::ENOTDIR),
                (false, true) => return Err(Errno::EISDIR),
                (true, true) if !dst.entries.is_empty() => return Err(Errno::ENOTEMPTY),
                _ => {}
            }
        }
        self.nodes.get_mut(&parent).ok_or(Errno::ENOENT)?.entries.remove(name);
        let np = self.nodes.get_mut(&newparent).ok_or(Errno::ENOENT)?;
        np.entries.insert(newname.to_os_string(), ino);
        np.mtime = SystemTime::now();
        Ok(())
    }

    /// fsync: the file's data and size become durable (a folder's entries for a folder).
    fn sync(&mut self, ino: u64) -> Result<(), Errno> {
        let n = self.nodes.get_mut(&ino).ok_or(Errno::ENOENT)?;
        self.syncs += 1;
        if n.dir {
            n.durable_entries = n.entries.clone();
            return Ok(());
        }
        n.durable_data.resize(n.data.len(), 0);
        if let Some((a, b)) = n.dirty.take() {
            let b = b.min(n.data.len());
            if a < b {
                n.durable_data[a..b].copy_from_slice(&n.data[a..b]);
            }
        }
        Ok(())
    }

    /// The power cut: the durable layer becomes the only one.
    fn reset(&mut self) {
        let mut reached = HashSet::new();
        let mut todo = vec![ROOT];
        while let Some(ino) = todo.pop() {
            if !reached.insert(ino) {
                continue;
            }
            if let Some(n) = self.nodes.get(&ino) {
                todo.extend(n.durable_entries.values().copied().filter(|c| self.nodes.contains_key(c)));
            }
        }
        self.nodes.retain(|ino, _| reached.contains(ino));
        let present: HashSet<u64> = self.nodes.keys().copied().collect();
        for n in self.nodes.values_mut() {
            n.data = n.durable_data.clone();
            n.dirty = None;
            n.durable_entries.retain(|_, c| present.contains(c));
            n.entries = n.durable_entries.clone();
        }
        self.open = 0;
        self.mount += 1;
    }
}

/// The state shared by every mount of one file system.
#[derive(Clone)]
struct Shared(Arc<Mutex<State>>);

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic in a handler poisons nothing the tree's consistency depends on.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One mount's request handler.
struct Handler {
    state: Shared,
    /// The mount this handler serves ([`State::mount`] when it was mounted).
    mount: u64,
}

impl Handler {
    /// The state, or EIO for a request that reached an unmounted, older mount.
    fn state(&self) -> Result<MutexGuard<'_, State>, Errno> {
        let st = self.state.lock();
        if st.mount != self.mount {
            return Err(Errno::EIO);
        }
        Ok(st)
    }
}

impl Filesystem for Handler {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let r = self.state().and_then(|st| {
            let ino = st.child(parent.0, name)?;
            st.attr(ino).ok_or(Errno::ENOENT)
        });
        match r {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.state().and_then(|st| st.attr(ino.0).ok_or(Errno::ENOENT)) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let r = self.state().and_then(|mut st| {
            let n = st.nodes.get_mut(&ino.0).ok_or(Errno::ENOENT)?;
            if let Some(mode) = mode {
                n.perm = (mode & 0o7777) as u16;
            }
            if let Some(size) = size {
                if n.dir {
                    return Err(Errno::EISDIR);
                }
                let size = size as usize;
                let old = n.data.len();
                n.data.resize(size, 0);
                n.touch(size.min(old), size.max(old));
            }
            st.attr(ino.0).ok_or(Errno::ENOENT)
        });
        match r {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, mode: u32, _umask: u32, reply: ReplyEntry) {
        let r = self.state().and_then(|mut st| {
            let ino = st.make(parent.0, name, true, (mode & 0o7777) as u16)?;
            st.attr(ino).ok_or(Errno::ENOENT)
        });
        match r {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.state().and_then(|mut st| st.remove(parent.0, name, false)) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.state().and_then(|mut st| st.remove(parent.0, name, true)) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        match self.state().and_then(|mut st| st.rename(parent.0, name, newparent.0, newname, flags)) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let r = self.state().and_then(|mut st| {
            st.nodes.get(&ino.0).ok_or(Errno::ENOENT)?;
            st.open += 1;
            Ok(())
        });
        match r {
            Ok(()) => reply.opened(FileHandle(0), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let st = match self.state() {
            Ok(st) => st,
            Err(e) => return reply.error(e),
        };
        let Some(n) = st.nodes.get(&ino.0) else { return reply.error(Errno::ENOENT) };
        let start = (offset as usize).min(n.data.len());
        let end = start.saturating_add(size as usize).min(n.data.len());
        reply.data(&n.data[start..end]);
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let r = self.state().and_then(|mut st| {
            let n = st.nodes.get_mut(&ino.0).ok_or(Errno::ENOENT)?;
            let start = offset as usize;
            let end = start + data.len();
            if n.data.len() < end {
                n.data.resize(end, 0);
            }
            n.data[start..end].copy_from_slice(data);
            n.touch(start, end);
            Ok(data.len() as u32)
        });
        match r {
            Ok(len) => reply.written(len),
            Err(e) => reply.error(e),
        }
    }

    fn flush(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _lock_owner: LockOwner, reply: ReplyEmpty) {
        // close() is not a sync.
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        if let Ok(mut st) = self.state() {
            st.open -= 1;
        }
        reply.ok();
    }

    fn fsync(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        match self.state().and_then(|mut st| st.sync(ino.0)) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let r = self.state().and_then(|mut st| {
            if !st.nodes.get(&ino.0).ok_or(Errno::ENOENT)?.dir {
                return Err(Errno::ENOTDIR);
            }
            st.open += 1;
            Ok(())
        });
        match r {
            Ok(()) => reply.opened(FileHandle(0), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let st = match self.state() {
            Ok(st) => st,
            Err(e) => return reply.error(e),
        };
        let Some(n) = st.nodes.get(&ino.0) else { return reply.error(Errno::ENOENT) };
        let mut all: Vec<(u64, FileType, OsString)> =
            vec![(ino.0, FileType::Directory, ".".into()), (ino.0, FileType::Directory, "..".into())];
        for (name, c) in &n.entries {
            let kind = if st.nodes.get(c).is_some_and(|c| c.dir) { FileType::Directory } else { FileType::RegularFile };
            all.push((*c, kind, name.clone()));
        }
        for (i, (c, kind, name)) in all.into_iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(c), i as u64 + 1, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _flags: OpenFlags, reply: ReplyEmpty) {
        if let Ok(mut st) = self.state() {
            st.open -= 1;
        }
        reply.ok();
    }

    fn fsyncdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        match self.state().and_then(|mut st| st.sync(ino.0)) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        // 16 GiB of 4 KiB blocks, all free: the tree is in memory.
        reply.statfs(1 << 22, 1 << 22, 1 << 22, 1 << 20, 1 << 20, 4096, 255, 4096);
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        reply.ok();
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let r = self.state().and_then(|mut st| {
            let ino = st.make(parent.0, name, false, (mode & 0o7777) as u16)?;
            st.open += 1;
            st.attr(ino).ok_or(Errno::ENOENT)
        });
        match r {
            Ok(attr) => reply.created(&TTL, &attr, Generation(0), FileHandle(0), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn fallocate(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let r = self.state().and_then(|mut st| {
            if mode & !libc::FALLOC_FL_KEEP_SIZE != 0 {
                return Err(Errno::EOPNOTSUPP);
            }
            let n = st.nodes.get_mut(&ino.0).ok_or(Errno::ENOENT)?;
            let end = (offset + length) as usize;
            if mode & libc::FALLOC_FL_KEEP_SIZE == 0 && n.data.len() < end {
                let old = n.data.len();
                n.data.resize(end, 0);
                n.touch(old, end);
            }
            Ok(())
        });
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }
}

/// A mounted power-cut file system.
pub struct PowerCutFs {
    state: Shared,
    mountpoint: PathBuf,
    session: Option<BackgroundSession>,
}

impl PowerCutFs {
    /// Mounts an empty file system on `mountpoint` (an existing empty folder).
    pub fn mount(mountpoint: &Path) -> io::Result<PowerCutFs> {
        let mut fs = PowerCutFs {
            state: Shared(Arc::new(Mutex::new(State::new()))),
            mountpoint: mountpoint.to_path_buf(),
            session: None,
        };
        fs.session = Some(fs.spawn()?);
        Ok(fs)
    }

    fn spawn(&self) -> io::Result<BackgroundSession> {
        let mount = self.state.lock().mount;
        let mut cfg = Config::default();
        cfg.mount_options = vec![MountOption::FSName("isovec-powercut".into()), MountOption::RW];
        fuser::spawn_mount(Handler { state: self.state.clone(), mount }, &self.mountpoint, &cfg)
    }

    /// The simulated power cut, once the writer is dead: waits (up to `wait`) for every file to
    /// be closed, unmounts, throws away what was not fsynced, and mounts again.
    pub fn cut(&mut self, wait: Duration) -> io::Result<()> {
        let deadline = Instant::now() + wait;
        loop {
            let open = self.state.lock().open;
            if open <= 0 {
                break;
            }
            if Instant::now() > deadline {
                return Err(io::Error::other(format!(
                    "{open} files still open on {} after {wait:?}",
                    self.mountpoint.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if let Some(s) = self.session.take() {
            s.umount_and_join()?;
        }
        self.state.lock().reset();
        self.session = Some(self.spawn()?);
        Ok(())
    }

    /// fsync and fsyncdir requests answered since the mount.
    pub fn syncs(&self) -> u64 {
        self.state.lock().syncs
    }
}

impl Drop for PowerCutFs {
    fn drop(&mut self) {
        if let Some(s) = self.session.take() {
            let _ = s.umount_and_join();
        }
    }
}
