using System.Globalization;
using System.Management.Automation;
using System.Management.Automation.Host;
using System.Security;

namespace IoTHubMqtt.Host;

/// <summary>A minimal PSHost: streams go to stdout/stderr the way pwsh writes them.</summary>
internal sealed class ConsoleHost : PSHost, IHostSupportsInteractiveSession
{
    private readonly ConsoleHostUserInterface ui = new();
    private readonly Guid instanceId = Guid.NewGuid();

    public int ExitCode { get; private set; }

    public bool ShouldExit { get; private set; }

    public override CultureInfo CurrentCulture => CultureInfo.CurrentCulture;

    public override CultureInfo CurrentUICulture => CultureInfo.CurrentUICulture;

    public override Guid InstanceId => instanceId;

    public override string Name => "IoTHubMqtt.Host";

    public override PSHostUserInterface UI => ui;

    public override Version Version => typeof(ConsoleHost).Assembly.GetName().Version ?? new Version(0, 1);

    public bool IsRunspacePushed => false;

    public System.Management.Automation.Runspaces.Runspace Runspace => throw new NotSupportedException();

    public override void EnterNestedPrompt() => throw new NotSupportedException("Nested prompts are not supported by this host.");

    public override void ExitNestedPrompt() => throw new NotSupportedException("Nested prompts are not supported by this host.");

    public override void NotifyBeginApplication()
    {
    }

    public override void NotifyEndApplication()
    {
    }

    public override void SetShouldExit(int exitCode)
    {
        ShouldExit = true;
        ExitCode = exitCode;
    }

    public void PopRunspace() => throw new NotSupportedException();

    public void PushRunspace(System.Management.Automation.Runspaces.Runspace runspace) => throw new NotSupportedException();
}

internal sealed partial class ConsoleHostUserInterface : PSHostUserInterface
{
    private readonly ConsoleRawUserInterface raw = new();
    private readonly bool plainOut = Console.IsOutputRedirected;
    private readonly bool plainErr = Console.IsErrorRedirected;

    // pwsh's own console host removes VT sequences when output is redirected; a custom host gets them raw.
    [System.Text.RegularExpressions.GeneratedRegex(@"\x1b\[[0-9;?]*[ -/]*[@-~]")]
    private static partial System.Text.RegularExpressions.Regex VtSequence();

    private string Out(string value) => plainOut ? VtSequence().Replace(value, string.Empty) : value;

    private string Err(string value) => plainErr ? VtSequence().Replace(value, string.Empty) : value;

    public override PSHostRawUserInterface RawUI => raw;

    public override string ReadLine() => Console.In.ReadLine() ?? string.Empty;

    public override SecureString ReadLineAsSecureString()
    {
        var secure = new SecureString();
        foreach (var c in ReadLine())
        {
            secure.AppendChar(c);
        }

        secure.MakeReadOnly();
        return secure;
    }

    public override void Write(string value) => Console.Out.Write(Out(value));

    public override void Write(ConsoleColor foregroundColor, ConsoleColor backgroundColor, string value) => Console.Out.Write(Out(value));

    public override void WriteLine(string value) => Console.Out.WriteLine(Out(value));

    public override void WriteErrorLine(string value) => Console.Error.WriteLine(Err(value));

    public override void WriteDebugLine(string message) => Console.Out.WriteLine(Out("DEBUG: " + message));

    public override void WriteVerboseLine(string message) => Console.Out.WriteLine(Out("VERBOSE: " + message));

    public override void WriteWarningLine(string message) => Console.Out.WriteLine(Out("WARNING: " + message));

    public override void WriteInformation(InformationRecord record)
    {
        // Write-Host output arrives here; other information records are silent unless asked for, as in pwsh.
    }

    public override void WriteProgress(long sourceId, ProgressRecord record)
    {
        // Progress is for interactive terminals; a script run writes none, as pwsh -NonInteractive in CI.
    }

    public override Dictionary<string, PSObject> Prompt(string caption, string message, System.Collections.ObjectModel.Collection<FieldDescription> descriptions)
    {
        if (!string.IsNullOrEmpty(message))
        {
            WriteLine(message);
        }

        var result = new Dictionary<string, PSObject>();
        foreach (var field in descriptions)
        {
            Write(field.Name + ": ");
            result[field.Name] = PSObject.AsPSObject(ReadLine());
        }

        return result;
    }

    public override PSCredential PromptForCredential(string caption, string message, string userName, string targetName) =>
        PromptForCredential(caption, message, userName, targetName, PSCredentialTypes.Default, PSCredentialUIOptions.Default);

    public override PSCredential PromptForCredential(string caption, string message, string userName, string targetName, PSCredentialTypes allowedCredentialTypes, PSCredentialUIOptions options)
    {
        WriteLine(message);
        if (string.IsNullOrEmpty(userName))
        {
            Write("User: ");
            userName = ReadLine();
        }

        Write("Password: ");
        return new PSCredential(userName, ReadLineAsSecureString());
    }

    public override int PromptForChoice(string caption, string message, System.Collections.ObjectModel.Collection<ChoiceDescription> choices, int defaultChoice)
    {
        if (Console.IsInputRedirected)
        {
            // No one to answer (CI): take the default, as -Confirm:$false would.
            return defaultChoice;
        }

        WriteLine(caption);
        WriteLine(message);
        for (var i = 0; i < choices.Count; i++)
        {
            WriteLine($"[{i}] {choices[i].Label.Replace("&", string.Empty, StringComparison.Ordinal)}");
        }

        Write($"(default {defaultChoice}): ");
        var answer = ReadLine();
        return int.TryParse(answer, out var chosen) && chosen >= 0 && chosen < choices.Count ? chosen : defaultChoice;
    }
}

internal sealed class ConsoleRawUserInterface : PSHostRawUserInterface
{
    private static int Width
    {
        get
        {
            try
            {
                return Console.IsOutputRedirected || Console.WindowWidth <= 0 ? 120 : Console.WindowWidth;
            }
            catch (IOException)
            {
                return 120;
            }
        }
    }

    public override ConsoleColor BackgroundColor { get; set; } = ConsoleColor.Black;

    public override Size BufferSize { get => new(Width, 9999); set { } }

    public override Coordinates CursorPosition { get; set; }

    public override int CursorSize { get; set; } = 1;

    public override ConsoleColor ForegroundColor { get; set; } = ConsoleColor.Gray;

    public override bool KeyAvailable => false;

    public override Size MaxPhysicalWindowSize => new(Width, 9999);

    public override Size MaxWindowSize => new(Width, 9999);

    public override Coordinates WindowPosition { get; set; }

    public override Size WindowSize { get => new(Width, 50); set { } }

    public override string WindowTitle { get; set; } = "IoTHubMqtt";

    public override void FlushInputBuffer()
    {
    }

    public override BufferCell[,] GetBufferContents(Rectangle rectangle) => throw new NotSupportedException();

    public override KeyInfo ReadKey(ReadKeyOptions options) => throw new NotSupportedException("This host does not read keys.");

    public override void ScrollBufferContents(Rectangle source, Coordinates destination, Rectangle clip, BufferCell fill) => throw new NotSupportedException();

    public override void SetBufferContents(Coordinates origin, BufferCell[,] contents) => throw new NotSupportedException();

    public override void SetBufferContents(Rectangle rectangle, BufferCell fill) => throw new NotSupportedException();
}
