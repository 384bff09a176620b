using System.Reflection;
using System.Runtime.InteropServices;

[assembly: AssemblyTitle("IoTHubDevice")]
[assembly: AssemblyDescription("ESP32 device app for Azure IoT Hub over MQTT (IoTHubMqtt firmware)")]
[assembly: AssemblyProduct("IoTHubMqtt")]
[assembly: AssemblyCopyright("Copyright (c) IoTHubMqtt contributors")]
[assembly: ComVisible(false)]
[assembly: AssemblyVersion("0.1.0.0")]
[assembly: AssemblyFileVersion("0.1.0.0")]
