using System.Net.Security;
using System.Reflection;
using System.Runtime.InteropServices;

namespace IoTHubMqtt.Emulator.Transport;

/// <summary>
/// On Linux and other OpenSSL platforms, asks OpenSSL to free a TLS connection's record buffers while it is idle
/// (<c>SSL_MODE_RELEASE_BUFFERS</c>, documented in OpenSSL's SSL_CTX_set_mode(3): "When we no longer need a read buffer
/// or a write buffer for a given SSL, then release the memory we were using to hold it"), as mosquitto and nginx do.
/// Without it every connection keeps a read and a write buffer of about 17 KB each for its whole life, which is most
/// of what an idle device costs. SslStream does not expose the setting, so the SSL handle is taken from its security
/// context; where that is not possible (Windows, macOS, another runtime layout, no libssl) nothing changes.
/// </summary>
internal static class OpenSslBufferRelease
{
    // OpenSSL's ssl.h: # define SSL_CTRL_MODE 33, # define SSL_MODE_RELEASE_BUFFERS 0x00000010U
    private const int SslCtrlMode = 33;
    private const long SslModeReleaseBuffers = 0x10;

    private static readonly FieldInfo? SecurityContext =
        OperatingSystem.IsWindows() || OperatingSystem.IsMacOS() || OperatingSystem.IsIOS() || OperatingSystem.IsAndroid()
            ? null
            : typeof(SslStream).GetField("_securityContext", BindingFlags.Instance | BindingFlags.NonPublic);

    private static readonly SslCtrlFunction? SslCtrl = Load();

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate long SslCtrlFunction(IntPtr ssl, int command, long larg, IntPtr parg);

    /// <summary>Whether this platform's TLS connections can have their idle buffers released.</summary>
    public static bool Available => SslCtrl != null && SecurityContext is not null;

    /// <summary>Sets the mode on an authenticated stream before any application data is read or written on it.</summary>
    public static bool TryApply(SslStream stream)
    {
        if (!Available || SecurityContext!.GetValue(stream) is not SafeHandle handle || handle.IsInvalid || handle.IsClosed)
        {
            return false;
        }

        var added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            var mode = SslCtrl!(handle.DangerousGetHandle(), SslCtrlMode, SslModeReleaseBuffers, IntPtr.Zero);
            return (mode & SslModeReleaseBuffers) != 0;
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

    private static SslCtrlFunction? Load()
    {
        if (OperatingSystem.IsWindows() || OperatingSystem.IsMacOS() || OperatingSystem.IsIOS() || OperatingSystem.IsAndroid())
        {
            return null;
        }

        // The library the runtime's own OpenSSL shim loaded first (System.Security.Cryptography.Native.OpenSsl tries
        // libssl.so.3, then 1.1): opening the same name again returns that same library.
        foreach (var name in new[] { "libssl.so.3", "libssl.so.1.1", "libssl.so" })
        {
            if (NativeLibrary.TryLoad(name, out var library) && NativeLibrary.TryGetExport(library, "SSL_ctrl", out var export))
            {
                return Marshal.GetDelegateForFunctionPointer<SslCtrlFunction>(export);
            }
        }

        return null;
    }
}
