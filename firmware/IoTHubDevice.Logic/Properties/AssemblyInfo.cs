using System.Reflection;
using System.Runtime.InteropServices;

[assembly: AssemblyTitle("IoTHubDevice.Logic")]
[assembly: AssemblyDescription("Portable logic of the IoTHubMqtt device app (shared with .NET)")]
[assembly: AssemblyProduct("IoTHubMqtt")]
[assembly: AssemblyCopyright("Copyright (c) IoTHubMqtt contributors")]
[assembly: ComVisible(false)]
[assembly: AssemblyVersion("0.1.0.0")]
[assembly: AssemblyFileVersion("0.1.0.0")]
