# The Send-IoTHubMessage sender of the telemetry benchmark, run by real pwsh and by the PowerShell engine hosted in
# the benchmark program alike (see SenderProcess.cs for the line protocol on stdin/stdout).
# One device: `$data | Send-IoTHubMessage -Connection $c`, the pipeline a script writes. Several devices: the same
# command once a device, in parallel in a runspace pool opened beforehand (what ForEach-Object -Parallel does, without
# timing the runspaces' creation), each given its device's messages as input: [powershell]::Create().AddCommand(...)
# .BeginInvoke($records), the runspaces keeping their threads (ReuseThread) from one run to the next. Timed: from the
# first message to the last acknowledgement, in this process.
param(
    [Parameter(Mandatory)] [string] $Manifest,
    [Parameter(Mandatory)] [string] $DevicesFile,
    [Parameter(Mandatory)] [int] $Port,
    [Parameter(Mandatory)] [string] $CaCertificatePath,
    [Parameter(Mandatory)] [int] $Window
)
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
Import-Module $Manifest

$connections = foreach ($line in [IO.File]::ReadAllLines($DevicesFile)) {
    if ($line) {
        $cs = $line.Split("`t", 2)[1]
        Connect-IoTHub -ConnectionString $cs -Port $Port -CaCertificatePath $CaCertificatePath -MaxInFlight $Window
    }
}

$state = [initialsessionstate]::CreateDefault2()
$state.ImportPSModule($Manifest)
$pool = [runspacefactory]::CreateRunspacePool($connections.Count, $connections.Count, $state, $Host)
$pool.ThreadOptions = 'ReuseThread' # each runspace keeps its thread from one run to the next
$pool.Open()
$self = [Diagnostics.Process]::GetCurrentProcess()
$out = [Console]::Out
$out.WriteLine("READY PowerShell-$($PSVersionTable.PSVersion)-$($PSVersionTable.PSEdition)"); $out.Flush()

while ($null -ne ($command = [Console]::In.ReadLine())) {
    $parts = $command.Split(' ')
    if ($parts[0] -ne 'RUN') { continue }
    $size = [int]$parts[1]; $devices = [int]$parts[2]; $perDevice = [int]$parts[3]
    $body = [string]::new([char]'x', $size)
    $data = [string[]]::new($perDevice)
    for ($i = 0; $i -lt $perDevice; $i++) { $data[$i] = $body }
    $failed = 0

    $self.Refresh(); $cpu = $self.TotalProcessorTime
    $watch = [Diagnostics.Stopwatch]::StartNew()
    if ($devices -eq 1) {
        $data | Send-IoTHubMessage -Connection $connections[0] -ErrorAction SilentlyContinue -ErrorVariable +errors
        $failed = @($errors).Count
    } else {
        $runs = for ($d = 0; $d -lt $devices; $d++) {
            $shell = [powershell]::Create()
            $shell.RunspacePool = $pool
            $null = $shell.AddCommand('Send-IoTHubMessage').AddParameter('Connection', $connections[$d]).AddParameter('ErrorAction', 'SilentlyContinue')
            $records = [Management.Automation.PSDataCollection[object]]::new([object[]]$data)
            $records.Complete()
            [pscustomobject]@{ Shell = $shell; Handle = $shell.BeginInvoke($records) }
        }
        foreach ($run in $runs) {
            $null = $run.Shell.EndInvoke($run.Handle)
            $failed += $run.Shell.Streams.Error.Count
            $run.Shell.Dispose()
        }
    }
    $watch.Stop()
    $self.Refresh()
    $cpuSeconds = ($self.TotalProcessorTime - $cpu).TotalSeconds
    $errors = $null
    $out.WriteLine([string]::Format([cultureinfo]::InvariantCulture, 'RESULT {0:R} {1:R} {2}', $watch.Elapsed.TotalSeconds, $cpuSeconds, $devices * $perDevice - $failed))
    $out.Flush()
}

$connections | Disconnect-IoTHub
$pool.Dispose()
