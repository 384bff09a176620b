# The Send-IoTHubMessage sender of the telemetry benchmark, run by real pwsh and by the PowerShell engine hosted in
# the benchmark program alike (see SenderProcess.cs for the line protocol on stdin/stdout).
# The pipeline a script writes: `$data | Send-IoTHubMessage -Connection $c` for one device, and for several
# `$data | Send-IoTHubMessage -Connection $fleet`, which sends every message from each device of the fleet. Timed: from
# the first message to the last acknowledgement, in this process.
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
    $fleet = $connections[0..($devices - 1)]

    $self.Refresh(); $cpu = $self.TotalProcessorTime
    $watch = [Diagnostics.Stopwatch]::StartNew()
    $data | Send-IoTHubMessage -Connection $fleet -ErrorAction SilentlyContinue -ErrorVariable +errors
    $failed = @($errors).Count
    $watch.Stop()
    $self.Refresh()
    $cpuSeconds = ($self.TotalProcessorTime - $cpu).TotalSeconds
    $errors = $null
    $out.WriteLine([string]::Format([cultureinfo]::InvariantCulture, 'RESULT {0:R} {1:R} {2}', $watch.Elapsed.TotalSeconds, $cpuSeconds, $devices * $perDevice - $failed))
    $out.Flush()
}

$connections | Disconnect-IoTHub
