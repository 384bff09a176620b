namespace IoTHubMqtt.Host;

/// <summary>The command line: <c>[-Verbose] [-Module path] (-File script.ps1 [args] | -Command text)</c>.</summary>
internal sealed record HostOptions(string? File, string? Command, IReadOnlyList<string> ScriptArguments, bool Verbose, string? ModulePath, bool NoModule)
{
    public const string Usage = """
        Usage: iothubmqtt-host [-Verbose] [-Module <path to IoTHubMqtt.psd1>] [-NoModule]
                               (-File <script.ps1> [script arguments] | -Command <script text>)

        Runs a PowerShell script with the IoTHubMqtt module imported and exits non-zero on a terminating
        error, as 'pwsh -File' does. Without -Module, the module is taken from IOTHUBMQTT_MODULE, from the
        build's out/ folder, or from PSModulePath.
        """;

    public static HostOptions Parse(IReadOnlyList<string> args)
    {
        string? file = null, command = null, module = null;
        bool verbose = false, noModule = false;
        var scriptArgs = new List<string>();
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            if (file is not null)
            {
                scriptArgs.Add(arg); // everything after -File belongs to the script
                continue;
            }

            switch (arg.ToLowerInvariant())
            {
                case "-file" or "-f":
                    file = Next(args, ref i, arg);
                    break;
                case "-command" or "-c":
                    command = string.Join(' ', args.Skip(i + 1));
                    i = args.Count;
                    break;
                case "-verbose":
                    verbose = true;
                    break;
                case "-module":
                    module = Next(args, ref i, arg);
                    break;
                case "-nomodule":
                    noModule = true;
                    break;
                case "-help" or "-?" or "--help" or "/?":
                    throw new HostUsageException(null);
                default:
                    throw new HostUsageException($"Unknown argument '{arg}'.");
            }
        }

        if (file is null && string.IsNullOrWhiteSpace(command))
        {
            throw new HostUsageException("Pass -File or -Command.");
        }

        return new HostOptions(file, command, scriptArgs, verbose, module, noModule);
    }

    private static string Next(IReadOnlyList<string> args, ref int i, string name)
    {
        if (i + 1 >= args.Count)
        {
            throw new HostUsageException($"{name} needs a value.");
        }

        return args[++i];
    }
}

internal sealed class HostUsageException(string? message) : Exception(message ?? string.Empty)
{
    public bool IsHelp => string.IsNullOrEmpty(Message);
}
