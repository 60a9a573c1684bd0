/*
 * posix.c - the few POSIX system calls Node does not offer, as a plain N-API addon.
 * Owns: flock(2), chroot(2), an AF_UNIX datagram socket (socket/sendto/close)
 *       for syslog's /dev/log and postlogd's public/postlog, and the layout
 *       of Postfix's TLS_TICKET_KEY as this platform's C compiler makes it.
 * Not here: policy (when to lock, what to log); the typed loader is src/native/posix.ts.
 * See also: binding.gyp, scripts/build-native.mjs, postfix/src/util/myflock.c
 *
 * Every failing system call becomes a thrown Error whose .code is the errno
 * name ("EWOULDBLOCK", "ENOENT", ...), .errno the positive errno number and
 * .syscall the call's name, as Node's own errors do.
 */

#include <node_api.h>

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_PATH_ARG 4096

/* errno_name - the symbolic name of an errno value, for Error.code */
static const char *errno_name(int err, const char *syscall)
{
    /* flock(2) documents EWOULDBLOCK; Linux gives it the value of EAGAIN. */
    if (err == EWOULDBLOCK && strcmp(syscall, "flock") == 0)
        return "EWOULDBLOCK";
    switch (err) {
    case EAGAIN: return "EAGAIN";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case ENOTDIR: return "ENOTDIR";
    case EBADF: return "EBADF";
    case EINTR: return "EINTR";
    case EINVAL: return "EINVAL";
    case EIO: return "EIO";
    case ELOOP: return "ELOOP";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case ENOMEM: return "ENOMEM";
    case ENOLCK: return "ENOLCK";
    case EFAULT: return "EFAULT";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case ENOBUFS: return "ENOBUFS";
    case ENOTSOCK: return "ENOTSOCK";
    case ECONNREFUSED: return "ECONNREFUSED";
    case EDESTADDRREQ: return "EDESTADDRREQ";
    case EMSGSIZE: return "EMSGSIZE";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case ENOTCONN: return "ENOTCONN";
    case EISCONN: return "EISCONN";
    case EPIPE: return "EPIPE";
    case ENOSPC: return "ENOSPC";
    case EROFS: return "EROFS";
    default: return "EUNKNOWN";
    }
}

/* throw_errno - throw Error{code, errno, syscall} for a failed system call */
static napi_value throw_errno(napi_env env, int err, const char *syscall)
{
    char    text[256];
    napi_value msg;
    napi_value code;
    napi_value error;
    napi_value num;
    napi_value call;
    const char *name = errno_name(err, syscall);

    snprintf(text, sizeof(text), "%s: %s", syscall, strerror(err));
    if (napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg) != napi_ok
        || napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code) != napi_ok
        || napi_create_error(env, code, msg, &error) != napi_ok) {
        napi_throw_error(env, name, text);
        return NULL;
    }
    if (napi_create_int32(env, err, &num) == napi_ok)
        napi_set_named_property(env, error, "errno", num);
    if (napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &call) == napi_ok)
        napi_set_named_property(env, error, "syscall", call);
    napi_throw(env, error);
    return NULL;
}

/* get_args - fetch up to max arguments, requiring at least min */
static int get_args(napi_env env, napi_callback_info info, size_t min,
                    size_t max, napi_value *argv)
{
    size_t  argc = max;

    if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok)
        return -1;
    if (argc < min) {
        napi_throw_type_error(env, "ERR_INVALID_ARG", "missing argument");
        return -1;
    }
    for (; argc < max; argc++)
        napi_get_undefined(env, &argv[argc]);
    return 0;
}

/* get_fd - a non-negative int32 file descriptor argument */
static int get_fd(napi_env env, napi_value v, int *fd)
{
    if (napi_get_value_int32(env, v, fd) != napi_ok || *fd < 0) {
        napi_throw_type_error(env, "ERR_INVALID_ARG", "fd must be a non-negative integer");
        return -1;
    }
    return 0;
}

/* get_path - a string argument without NUL, at most MAX_PATH_ARG bytes */
static int get_path(napi_env env, napi_value v, char *buf, size_t size, size_t *len)
{
    if (napi_get_value_string_utf8(env, v, buf, size, len) != napi_ok) {
        napi_throw_type_error(env, "ERR_INVALID_ARG", "path must be a string");
        return -1;
    }
    if (*len == 0 || *len >= size - 1 || strlen(buf) != *len) {
        napi_throw_type_error(env, "ERR_INVALID_ARG", "bad path argument");
        return -1;
    }
    return 0;
}

/* js_flock - flock(fd, op: 0 un, 1 sh, 2 ex, nonblock: bool) */
static napi_value js_flock(napi_env env, napi_callback_info info)
{
    napi_value argv[3];
    int     fd;
    int     op;
    bool    nonblock = false;
    int     how;
    napi_valuetype t;

    if (get_args(env, info, 2, 3, argv) < 0 || get_fd(env, argv[0], &fd) < 0)
        return NULL;
    if (napi_get_value_int32(env, argv[1], &op) != napi_ok || op < 0 || op > 2) {
        napi_throw_type_error(env, "ERR_INVALID_ARG", "bad lock operation");
        return NULL;
    }
    if (napi_typeof(env, argv[2], &t) == napi_ok && t == napi_boolean)
        napi_get_value_bool(env, argv[2], &nonblock);
    how = op == 0 ? LOCK_UN : op == 1 ? LOCK_SH : LOCK_EX;
    if (nonblock)
        how |= LOCK_NB;
    while (flock(fd, how) < 0) {
        if (errno != EINTR)
            return throw_errno(env, errno, "flock");
    }
    return NULL;
}

/* js_chroot - chroot(path) followed by chdir("/") */
static napi_value js_chroot(napi_env env, napi_callback_info info)
{
    napi_value argv[1];
    char    path[MAX_PATH_ARG];
    size_t  len;

    if (get_args(env, info, 1, 1, argv) < 0
        || get_path(env, argv[0], path, sizeof(path), &len) < 0)
        return NULL;
    if (chroot(path) < 0)
        return throw_errno(env, errno, "chroot");
    if (chdir("/") < 0)
        return throw_errno(env, errno, "chdir");
    return NULL;
}

/* js_unix_dgram_socket - a close-on-exec, non-blocking AF_UNIX datagram socket */
static napi_value js_unix_dgram_socket(napi_env env, napi_callback_info info)
{
    int     fd;
    napi_value result;

    (void) info;
    if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0)
        return throw_errno(env, errno, "socket");
    if (napi_create_int32(env, fd, &result) != napi_ok) {
        close(fd);
        return NULL;
    }
    return result;
}

/* js_unix_dgram_send - sendto(fd, data, path) one datagram */
static napi_value js_unix_dgram_send(napi_env env, napi_callback_info info)
{
    napi_value argv[3];
    int     fd;
    struct sockaddr_un sun;
    char    path[MAX_PATH_ARG];
    size_t  len;
    void   *data;
    size_t  data_len;
    bool    is_buffer = false;
    ssize_t sent;

    if (get_args(env, info, 3, 3, argv) < 0 || get_fd(env, argv[0], &fd) < 0
        || get_path(env, argv[1], path, sizeof(path), &len) < 0)
        return NULL;
    if (len >= sizeof(sun.sun_path)) {
        napi_throw_type_error(env, "ERR_INVALID_ARG", "socket path too long");
        return NULL;
    }
    if (napi_is_buffer(env, argv[2], &is_buffer) != napi_ok || !is_buffer
        || napi_get_buffer_info(env, argv[2], &data, &data_len) != napi_ok) {
        napi_throw_type_error(env, "ERR_INVALID_ARG", "data must be a Buffer");
        return NULL;
    }
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    memcpy(sun.sun_path, path, len);
    do {
        sent = sendto(fd, data, data_len, MSG_NOSIGNAL,
                      (struct sockaddr *) &sun, sizeof(sun));
    } while (sent < 0 && errno == EINTR);
    if (sent < 0)
        return throw_errno(env, errno, "sendto");
    return NULL;
}

/* js_close_fd - close(fd) */
static napi_value js_close_fd(napi_env env, napi_callback_info info)
{
    napi_value argv[1];
    int     fd;

    if (get_args(env, info, 1, 1, argv) < 0 || get_fd(env, argv[0], &fd) < 0)
        return NULL;
    if (close(fd) < 0 && errno != EINTR)
        return throw_errno(env, errno, "close");
    return NULL;
}

/* ticket_key_probe - the shape of Postfix's TLS_TICKET_KEY (src/tls/tls_scache.h) */
struct ticket_key_probe {
    unsigned char name[16];
    unsigned char bits[32];
    unsigned char hmac[32];
    time_t  tout;
};

/* set_uint - obj[name] = value, 0 on success */
static int set_uint(napi_env env, napi_value obj, const char *name, size_t value)
{
    napi_value v;

    if (napi_create_uint32(env, (uint32_t) value, &v) != napi_ok)
        return -1;
    return napi_set_named_property(env, obj, name, v) == napi_ok ? 0 : -1;
}

/* js_ticket_key_layout - {size, timeSize, toutOffset} of TLS_TICKET_KEY here */
static napi_value js_ticket_key_layout(napi_env env, napi_callback_info info)
{
    napi_value result;

    (void) info;
    if (napi_create_object(env, &result) != napi_ok
        || set_uint(env, result, "size", sizeof(struct ticket_key_probe)) < 0
        || set_uint(env, result, "timeSize", sizeof(time_t)) < 0
        || set_uint(env, result, "toutOffset", offsetof(struct ticket_key_probe, tout)) < 0)
        return NULL;
    return result;
}

/* init - export the functions */
static napi_value init(napi_env env, napi_value exports)
{
    napi_property_descriptor props[] = {
        {"flock", NULL, js_flock, NULL, NULL, NULL, napi_enumerable, NULL},
        {"chroot", NULL, js_chroot, NULL, NULL, NULL, napi_enumerable, NULL},
        {"unixDgramSocket", NULL, js_unix_dgram_socket, NULL, NULL, NULL, napi_enumerable, NULL},
        {"unixDgramSend", NULL, js_unix_dgram_send, NULL, NULL, NULL, napi_enumerable, NULL},
        {"closeFd", NULL, js_close_fd, NULL, NULL, NULL, napi_enumerable, NULL},
        {"ticketKeyLayout", NULL, js_ticket_key_layout, NULL, NULL, NULL, napi_enumerable, NULL},
    };

    if (napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) != napi_ok)
        return NULL;
    return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
