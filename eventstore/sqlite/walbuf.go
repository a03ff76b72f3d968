package sqlite

import (
	"errors"
	"fmt"
	"sync"
	"unsafe"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// The write connection opens the database through walBufferVFS, a shim over
// SQLite's default VFS that changes one thing: the writes SQLite makes to the
// WAL file are gathered in memory and reach the file together, with one
// write(2), when SQLite next does anything else with that file; above all
// before it syncs it. SQLite writes each page of a commit with two pwrite(2)
// calls, a frame header and the page, so a commit that dirties N pages costs
// 2N system calls without the shim and one or two with it.
//
// Durability and visibility are those of SQLite: the bytes reach the file,
// in the order SQLite wrote them, before the sync that makes the commit
// durable, and SQLite makes the frames visible to other connections only
// after that sync returns. This holds because the write connection runs with
// synchronous=FULL, under which every commit syncs the WAL, and with
// cache_spill=OFF, under which SQLite writes WAL frames only when it commits
// (a spilled page of a transaction that is then rolled back would otherwise
// sit in the buffer after the write lock is released). Open checks both.
// Reads, truncation, size queries, file controls and close also write the
// buffer out first, so SQLite never sees the file other than it wrote it.
//
// Other files (the database, its shared memory) go to the default VFS
// untouched, and so do all other connections.
const walBufferVFS = "piperun-walbuf"

// walBufferSize is the most bytes gathered before they are written; a
// larger commit takes one write per walBufferSize bytes. The default VFS
// writes at most 128 KiB - 1 bytes in one call (it masks the length with
// 0x1ffff), so the buffer is that size.
const walBufferSize = 1<<17 - 1

// walFile is the sqlite3_file of a WAL file opened through walBufferVFS. The
// default VFS's own file follows it, at walFileHeader bytes.
type walFile struct {
	methods uintptr // sqlite3_file.pMethods: &walMethods
	buf     uintptr // walBufferSize bytes from sqlite3_malloc, 0 until first used
	off     int64   // the file offset of buf's first byte
	n       int64   // bytes in buf
}

// walFileHeader is the size of walFile, rounded up so that the inner file is
// aligned for any field.
const walFileHeader = (unsafe.Sizeof(walFile{}) + 15) &^ 15

var (
	registerOnce sync.Once
	registerErr  error
	// baseVFS is SQLite's default VFS, which walBufferVFS wraps.
	baseVFS uintptr
	// walMethods are the I/O methods of a walFile.
	walMethods sqlite3.Tsqlite3_io_methods
)

// registerWALBufferVFS makes walBufferVFS known to SQLite, once per process.
func registerWALBufferVFS() error {
	registerOnce.Do(func() { registerErr = registerVFS() })
	return registerErr
}

func registerVFS() error {
	tls := libc.NewTLS()
	defer tls.Close()
	base := sqlite3.Xsqlite3_vfs_find(tls, 0)
	if base == 0 {
		return errors.New("register SQLite VFS: no default VFS")
	}
	p := sqlite3.Xsqlite3_malloc64(tls, uint64(unsafe.Sizeof(sqlite3.Tsqlite3_vfs{})))
	if p == 0 {
		return errors.New("register SQLite VFS: out of memory")
	}
	name, err := libc.CString(walBufferVFS)
	if err != nil {
		sqlite3.Xsqlite3_free(tls, p)
		return fmt.Errorf("register SQLite VFS: %w", err)
	}
	baseVFS = base
	vfs := (*sqlite3.Tsqlite3_vfs)(cptr(p))
	*vfs = *(*sqlite3.Tsqlite3_vfs)(cptr(base))
	vfs.FpNext = 0
	vfs.FzName = name
	vfs.FszOsFile += int32(walFileHeader)
	setFunc(&vfs.FxOpen, walBufferOpen)

	walMethods.FiVersion = 1 // no shared memory or mmap on a WAL file
	setFunc(&walMethods.FxClose, walClose)
	setFunc(&walMethods.FxRead, walRead)
	setFunc(&walMethods.FxWrite, walWrite)
	setFunc(&walMethods.FxTruncate, walTruncate)
	setFunc(&walMethods.FxSync, walSync)
	setFunc(&walMethods.FxFileSize, walFileSize)
	setFunc(&walMethods.FxLock, walLock)
	setFunc(&walMethods.FxUnlock, walUnlock)
	setFunc(&walMethods.FxCheckReservedLock, walCheckReservedLock)
	setFunc(&walMethods.FxFileControl, walFileControl)
	setFunc(&walMethods.FxSectorSize, walSectorSize)
	setFunc(&walMethods.FxDeviceCharacteristics, walDeviceCharacteristics)

	if rc := sqlite3.Xsqlite3_vfs_register(tls, p, 0); rc != sqlite3.SQLITE_OK {
		return fmt.Errorf("register SQLite VFS: result code %d", rc)
	}
	return nil
}

// The signatures of the methods called through C function pointers.
type (
	fnOpen        = func(*libc.TLS, uintptr, uintptr, uintptr, int32, uintptr) int32
	fnFile        = func(*libc.TLS, uintptr) int32
	fnReadWrite   = func(*libc.TLS, uintptr, uintptr, int32, int64) int32
	fnInt64       = func(*libc.TLS, uintptr, int64) int32
	fnInt32       = func(*libc.TLS, uintptr, int32) int32
	fnPointer     = func(*libc.TLS, uintptr, uintptr) int32
	fnFileControl = func(*libc.TLS, uintptr, int32, uintptr) int32
)

// setFunc stores Go function f in the C function pointer at field, as the
// transpiled SQLite stores its own.
func setFunc[F any](field *uintptr, f F) {
	*(*F)(unsafe.Pointer(field)) = f
}

// cfunc is the Go function behind C function pointer p.
func cfunc[F any](p uintptr) F {
	return *(*F)(unsafe.Pointer(&p))
}

// cptr turns an address in C memory, which the Go garbage collector does
// not manage, into a pointer.
func cptr(p uintptr) unsafe.Pointer {
	return *(*unsafe.Pointer)(unsafe.Pointer(&p))
}

func walBufferOpen(tls *libc.TLS, _ uintptr, zName uintptr, pFile uintptr, flags int32, pOutFlags uintptr) int32 {
	open := cfunc[fnOpen]((*sqlite3.Tsqlite3_vfs)(cptr(baseVFS)).FxOpen)
	if flags&sqlite3.SQLITE_OPEN_WAL == 0 {
		return open(tls, baseVFS, zName, pFile, flags, pOutFlags)
	}
	w := (*walFile)(cptr(pFile))
	*w = walFile{}
	inner := pFile + walFileHeader
	if rc := open(tls, baseVFS, zName, inner, flags, pOutFlags); rc != sqlite3.SQLITE_OK {
		if innerMethods(pFile) != nil {
			cfunc[fnFile](innerMethods(pFile).FxClose)(tls, inner)
		}
		return rc
	}
	w.methods = uintptr(unsafe.Pointer(&walMethods))
	return sqlite3.SQLITE_OK
}

// innerMethods are the I/O methods of the default VFS's file inside the
// walFile at pFile; nil if it is not open.
func innerMethods(pFile uintptr) *sqlite3.Tsqlite3_io_methods {
	return (*sqlite3.Tsqlite3_io_methods)(cptr((*sqlite3.Tsqlite3_file)(cptr(pFile + walFileHeader)).FpMethods))
}

// flush writes the gathered bytes of the walFile at pFile. They are dropped
// whether or not the write succeeds: SQLite treats a failed write as the end
// of the transaction, and writes the frames again if it retries.
func flush(tls *libc.TLS, pFile uintptr) int32 {
	w := (*walFile)(cptr(pFile))
	if w.n == 0 {
		return sqlite3.SQLITE_OK
	}
	n := w.n
	w.n = 0
	return cfunc[fnReadWrite](innerMethods(pFile).FxWrite)(tls, pFile+walFileHeader, w.buf, int32(n), w.off)
}

func walWrite(tls *libc.TLS, pFile uintptr, zBuf uintptr, iAmt int32, iOfst int64) int32 {
	w := (*walFile)(cptr(pFile))
	if w.n > 0 && (iOfst != w.off+w.n || w.n+int64(iAmt) > walBufferSize) {
		if rc := flush(tls, pFile); rc != sqlite3.SQLITE_OK {
			return rc
		}
	}
	if w.buf == 0 && iAmt < walBufferSize {
		w.buf = sqlite3.Xsqlite3_malloc64(tls, walBufferSize)
	}
	if w.buf == 0 || iAmt >= walBufferSize {
		return cfunc[fnReadWrite](innerMethods(pFile).FxWrite)(tls, pFile+walFileHeader, zBuf, iAmt, iOfst)
	}
	if w.n == 0 {
		w.off = iOfst
	}
	dst := unsafe.Slice((*byte)(cptr(w.buf+uintptr(w.n))), iAmt)
	copy(dst, unsafe.Slice((*byte)(cptr(zBuf)), iAmt))
	w.n += int64(iAmt)
	return sqlite3.SQLITE_OK
}

func walClose(tls *libc.TLS, pFile uintptr) int32 {
	w := (*walFile)(cptr(pFile))
	rc := flush(tls, pFile)
	if rc2 := cfunc[fnFile](innerMethods(pFile).FxClose)(tls, pFile+walFileHeader); rc == sqlite3.SQLITE_OK {
		rc = rc2
	}
	if w.buf != 0 {
		sqlite3.Xsqlite3_free(tls, w.buf)
		w.buf = 0
	}
	return rc
}

func walRead(tls *libc.TLS, pFile uintptr, zBuf uintptr, iAmt int32, iOfst int64) int32 {
	if rc := flush(tls, pFile); rc != sqlite3.SQLITE_OK {
		return rc
	}
	return cfunc[fnReadWrite](innerMethods(pFile).FxRead)(tls, pFile+walFileHeader, zBuf, iAmt, iOfst)
}

func walTruncate(tls *libc.TLS, pFile uintptr, size int64) int32 {
	if rc := flush(tls, pFile); rc != sqlite3.SQLITE_OK {
		return rc
	}
	return cfunc[fnInt64](innerMethods(pFile).FxTruncate)(tls, pFile+walFileHeader, size)
}

func walSync(tls *libc.TLS, pFile uintptr, flags int32) int32 {
	if rc := flush(tls, pFile); rc != sqlite3.SQLITE_OK {
		return rc
	}
	return cfunc[fnInt32](innerMethods(pFile).FxSync)(tls, pFile+walFileHeader, flags)
}

func walFileSize(tls *libc.TLS, pFile uintptr, pSize uintptr) int32 {
	if rc := flush(tls, pFile); rc != sqlite3.SQLITE_OK {
		return rc
	}
	return cfunc[fnPointer](innerMethods(pFile).FxFileSize)(tls, pFile+walFileHeader, pSize)
}

func walFileControl(tls *libc.TLS, pFile uintptr, op int32, pArg uintptr) int32 {
	if rc := flush(tls, pFile); rc != sqlite3.SQLITE_OK {
		return rc
	}
	return cfunc[fnFileControl](innerMethods(pFile).FxFileControl)(tls, pFile+walFileHeader, op, pArg)
}

func walLock(tls *libc.TLS, pFile uintptr, eLock int32) int32 {
	return cfunc[fnInt32](innerMethods(pFile).FxLock)(tls, pFile+walFileHeader, eLock)
}

func walUnlock(tls *libc.TLS, pFile uintptr, eLock int32) int32 {
	return cfunc[fnInt32](innerMethods(pFile).FxUnlock)(tls, pFile+walFileHeader, eLock)
}

func walCheckReservedLock(tls *libc.TLS, pFile uintptr, pResOut uintptr) int32 {
	return cfunc[fnPointer](innerMethods(pFile).FxCheckReservedLock)(tls, pFile+walFileHeader, pResOut)
}

func walSectorSize(tls *libc.TLS, pFile uintptr) int32 {
	return cfunc[fnFile](innerMethods(pFile).FxSectorSize)(tls, pFile+walFileHeader)
}

func walDeviceCharacteristics(tls *libc.TLS, pFile uintptr) int32 {
	return cfunc[fnFile](innerMethods(pFile).FxDeviceCharacteristics)(tls, pFile+walFileHeader)
}
