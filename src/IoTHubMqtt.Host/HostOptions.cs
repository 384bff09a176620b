namespace IoTHubMqtt.Host;

/// <summary>
/// The host's own options, which come first: <c>[-Module path | -NoModule]</c>. Everything from the first
/// other argument on is pwsh's command line (<c>-File script.ps1 args…</c>, <c>-Command text</c>, <c>-NoExit</c>…), passed
/// to PowerShell's console host unchanged.
/// </summary>
internal sealed record HostOptions(string? ModulePath, bool NoModule, IReadOnlyList<string> PwshArguments)
{
    public const string Usage = """
        Usage: iothubmqtt-host [-Module <path to IoTHubMqtt.psd1> | -NoModule] [pwsh arguments]

        PowerShell's own console host (pwsh 7.6 on Microsoft.PowerShell.SDK) with the IoTHubMqtt module imported: the
        rest of the command line is pwsh's, e.g. -File <script.ps1> [script arguments] or -Command <text>, and the exit
        code follows pwsh's rules. With no pwsh arguments it starts an interactive session. Profiles are not loaded
        (pass -Command '. $PROFILE' to load yours). Without -Module, the module is taken from IOTHUBMQTT_MODULE, from the
        build's out/ folder, or from PSModulePath.

        """;

    public static HostOptions Parse(IReadOnlyList<string> args)
    {
        string? module = null;
        var noModule = false;
        var i = 0;
        for (; i < args.Count; i++)
        {
            switch (args[i].ToLowerInvariant())
            {
                case "-module":
                    if (i + 1 >= args.Count)
                    {
                        throw new HostUsageException("-Module needs the path of IoTHubMqtt.psd1.");
                    }

                    module = args[++i];
                    continue;
                case "-nomodule":
                    noModule = true;
                    continue;
                case "-help" or "-?" or "--help" or "-h" or "/?":
                    throw new HostUsageException(null);
            }

            break;
        }

        if (module is not null && noModule)
        {
            throw new HostUsageException("-Module and -NoModule exclude each other.");
        }

        return new HostOptions(module, noModule, args.Skip(i).ToList());
    }
}

internal sealed class HostUsageException(string? message) : Exception(message ?? string.Empty)
{
    public bool IsHelp => string.IsNullOrEmpty(Message);
}
