using System.Net.Security;
using System.Reflection;
using System.Runtime.InteropServices;

namespace IoTHubMqtt.Emulator.Transport;

/// <summary>
/// On Linux and other OpenSSL platforms, lets an idle TLS connection keep no buffers it no longer needs, as mosquitto and
/// nginx do. Two kinds:
/// <list type="bullet">
/// <item>OpenSSL's own record buffers (<c>SSL_MODE_RELEASE_BUFFERS</c>, documented in OpenSSL's SSL_CTX_set_mode(3):
/// "When we no longer need a read buffer or a write buffer for a given SSL, then release the memory we were using to hold
/// it"). Without it every connection keeps a read and a write buffer of about 17 KB each for its whole life, which is most
/// of what an idle device costs.</item>
/// <item>The memory BIOs SslStream moves ciphertext through (BIO_s_mem(3)): a memory BIO's buffer grows to the largest
/// flight written into it at once and never shrinks, so after the handshake the pair keeps room for the server's first
/// flight (certificate, signature, session tickets) for the connection's life, about 0.6 KB with a P-256 certificate and
/// several KB with an RSA chain. Once the handshake is done and both are empty, each gets a new, empty buffer
/// (BIO_set_mem_buf(3), which frees the old one); the next record allocates only what it needs.</item>
/// </list>
/// SslStream exposes neither, so the SSL handle is taken from its security context; where that is not possible (Windows,
/// macOS, another runtime layout, no libssl, a BIO that is not a memory BIO) nothing changes.
/// </summary>
internal static class OpenSslBufferRelease
{
    // OpenSSL's ssl.h: # define SSL_CTRL_MODE 33, # define SSL_MODE_RELEASE_BUFFERS 0x00000010U
    private const int SslCtrlMode = 33;
    private const long SslModeReleaseBuffers = 0x10;

    // OpenSSL's bio.h: # define BIO_CTRL_PENDING 10, # define BIO_C_SET_BUF_MEM 114, # define BIO_CLOSE 0x01,
    // # define BIO_TYPE_SOURCE_SINK 0x0400, # define BIO_TYPE_MEM ( 1|BIO_TYPE_SOURCE_SINK)
    private const int BioCtrlPending = 10;
    private const int BioSetBufMem = 114;
    private const long BioClose = 0x01;
    private const int BioTypeMem = 1 | 0x0400;

    private static readonly FieldInfo? SecurityContext =
        OperatingSystem.IsWindows() || OperatingSystem.IsMacOS() || OperatingSystem.IsIOS() || OperatingSystem.IsAndroid()
            ? null
            : typeof(SslStream).GetField("_securityContext", BindingFlags.Instance | BindingFlags.NonPublic);

    private static readonly OpenSsl? Native = OpenSsl.Load();

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate long SslCtrlFunction(IntPtr ssl, int command, long larg, IntPtr parg);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate IntPtr SslGetBioFunction(IntPtr ssl);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate long BioCtrlFunction(IntPtr bio, int command, long larg, IntPtr parg);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate long BioCtrlPointerFunction(IntPtr bio, int command, long larg, out IntPtr parg);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int BioMethodTypeFunction(IntPtr bio);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate IntPtr BufMemNewFunction();

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate void BufMemFreeFunction(IntPtr buffer);

    /// <summary>Whether this platform's TLS connections can have their idle buffers released.</summary>
    public static bool Available => Native != null && SecurityContext is not null;

    /// <summary>
    /// On an authenticated stream, before any application data is read or written on it (nothing else may use the stream
    /// meanwhile): sets <c>SSL_MODE_RELEASE_BUFFERS</c> and gives the handshake's BIO buffers back. True when the mode is set.
    /// </summary>
    public static bool TryApply(SslStream stream) =>
        WithSsl(stream, static ssl =>
        {
            var mode = Native!.SslCtrl(ssl, SslCtrlMode, SslModeReleaseBuffers, IntPtr.Zero);
            Native.ReleaseIfEmpty(Native.SslGetReadBio(ssl));
            Native.ReleaseIfEmpty(Native.SslGetWriteBio(ssl));
            return (mode & SslModeReleaseBuffers) != 0;
        });

    /// <summary>
    /// Gives back the BIO buffers of a connection that is about to wait for its peer: the caller guarantees that no read
    /// and no write is in progress on <paramref name="stream"/> (a BIO holding data keeps it). False where nothing can be done.
    /// </summary>
    public static bool ReleaseIdleBuffers(SslStream stream) =>
        WithSsl(stream, static ssl =>
        {
            Native!.ReleaseIfEmpty(Native.SslGetReadBio(ssl));
            Native.ReleaseIfEmpty(Native.SslGetWriteBio(ssl));
            return true;
        });

    /// <summary>The BIO buffer sizes of an authenticated stream (read, write; -1 where unknown), for tests.</summary>
    internal static (long Read, long Write) BioBufferSizes(SslStream stream)
    {
        (long, long) sizes = (-1, -1);
        WithSsl(stream, ssl =>
        {
            sizes = (Native!.BufferSize(Native.SslGetReadBio(ssl)), Native.BufferSize(Native.SslGetWriteBio(ssl)));
            return true;
        });
        return sizes;
    }

    /// <summary>Runs <paramref name="action"/> on the stream's SSL handle, kept alive meanwhile (a concurrent dispose frees it after).</summary>
    private static bool WithSsl(SslStream stream, Func<IntPtr, bool> action)
    {
        if (!Available || SecurityContext!.GetValue(stream) is not SafeHandle handle || handle.IsInvalid || handle.IsClosed)
        {
            return false;
        }

        var added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            return action(handle.DangerousGetHandle());
        }
        catch (ObjectDisposedException)
        {
            return false;
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    private sealed class OpenSsl
    {
        // OpenSSL's buffer.h: struct buf_mem_st { size_t length; char *data; size_t max; unsigned long flags; }
        private const int BioGetBufMemPtr = 115; // bio.h: # define BIO_C_GET_BUF_MEM_PTR 115

        public required SslCtrlFunction SslCtrl { get; init; }

        public required SslGetBioFunction SslGetReadBio { get; init; }

        public required SslGetBioFunction SslGetWriteBio { get; init; }

        public required BioCtrlFunction BioCtrl { get; init; }

        public required BioCtrlPointerFunction BioCtrlPointer { get; init; }

        public required BioMethodTypeFunction BioMethodType { get; init; }

        public required BufMemNewFunction BufMemNew { get; init; }

        public required BufMemFreeFunction BufMemFree { get; init; }

        /// <summary>Replaces an empty memory BIO's buffer, when it holds room for anything, with a new, empty one (the old one is freed).</summary>
        public void ReleaseIfEmpty(IntPtr bio)
        {
            if (BufferSize(bio) <= 0 || BioCtrl(bio, BioCtrlPending, 0, IntPtr.Zero) != 0)
            {
                return;
            }

            var empty = BufMemNew();
            if (empty != IntPtr.Zero && BioCtrl(bio, BioSetBufMem, BioClose, empty) <= 0)
            {
                BufMemFree(empty);
            }
        }

        /// <summary>The bytes a memory BIO's buffer holds room for; -1 for another kind of BIO.</summary>
        public long BufferSize(IntPtr bio)
        {
            if (bio == IntPtr.Zero || BioMethodType(bio) != BioTypeMem)
            {
                return -1;
            }

            BioCtrlPointer(bio, BioGetBufMemPtr, 0, out var buffer);
            return buffer == IntPtr.Zero ? -1 : (long)Marshal.ReadIntPtr(buffer, 2 * IntPtr.Size);
        }

        public static OpenSsl? Load()
        {
            if (OperatingSystem.IsWindows() || OperatingSystem.IsMacOS() || OperatingSystem.IsIOS() || OperatingSystem.IsAndroid())
            {
                return null;
            }

            // The libraries the runtime's own OpenSSL shim loaded first (System.Security.Cryptography.Native.OpenSsl tries
            // libssl.so.3, then 1.1): opening the same names again returns those same libraries.
            foreach (var (ssl, crypto) in new[] { ("libssl.so.3", "libcrypto.so.3"), ("libssl.so.1.1", "libcrypto.so.1.1"), ("libssl.so", "libcrypto.so") })
            {
                if (NativeLibrary.TryLoad(ssl, out var sslLibrary) && NativeLibrary.TryLoad(crypto, out var cryptoLibrary)
                    && NativeLibrary.TryGetExport(sslLibrary, "SSL_ctrl", out var sslCtrl)
                    && NativeLibrary.TryGetExport(sslLibrary, "SSL_get_rbio", out var getReadBio)
                    && NativeLibrary.TryGetExport(sslLibrary, "SSL_get_wbio", out var getWriteBio)
                    && NativeLibrary.TryGetExport(cryptoLibrary, "BIO_ctrl", out var bioCtrl)
                    && NativeLibrary.TryGetExport(cryptoLibrary, "BIO_method_type", out var bioMethodType)
                    && NativeLibrary.TryGetExport(cryptoLibrary, "BUF_MEM_new", out var bufMemNew)
                    && NativeLibrary.TryGetExport(cryptoLibrary, "BUF_MEM_free", out var bufMemFree))
                {
                    return new OpenSsl
                    {
                        SslCtrl = Marshal.GetDelegateForFunctionPointer<SslCtrlFunction>(sslCtrl),
                        SslGetReadBio = Marshal.GetDelegateForFunctionPointer<SslGetBioFunction>(getReadBio),
                        SslGetWriteBio = Marshal.GetDelegateForFunctionPointer<SslGetBioFunction>(getWriteBio),
                        BioCtrl = Marshal.GetDelegateForFunctionPointer<BioCtrlFunction>(bioCtrl),
                        BioCtrlPointer = Marshal.GetDelegateForFunctionPointer<BioCtrlPointerFunction>(bioCtrl),
                        BioMethodType = Marshal.GetDelegateForFunctionPointer<BioMethodTypeFunction>(bioMethodType),
                        BufMemNew = Marshal.GetDelegateForFunctionPointer<BufMemNewFunction>(bufMemNew),
                        BufMemFree = Marshal.GetDelegateForFunctionPointer<BufMemFreeFunction>(bufMemFree),
                    };
                }
            }

            return null;
        }
    }
}
