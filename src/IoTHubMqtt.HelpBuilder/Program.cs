using IoTHubMqtt.HelpBuilder;

// iothubmqtt-helpbuilder build <help dir> <output dir>   markdown -> en-US/IoTHubMqtt.dll-Help.xml + about_*.help.txt
// iothubmqtt-helpbuilder new <module psd1> <help dir>     markdown skeletons for exported cmdlets that have none
// iothubmqtt-helpbuilder package <module dir> <output dir> the module folder as a PowerShellGet/PSResourceGet .nupkg
try
{
    switch (args)
    {
        case ["build", var helpDirectory, var outputDirectory]:
            Directory.CreateDirectory(outputDirectory);
            var commands = Directory.GetFiles(helpDirectory, "*-*.md").Order(StringComparer.Ordinal).Select(MarkdownReader.Read).ToList();
            MamlWriter.Write(commands).Save(Path.Combine(outputDirectory, "IoTHubMqtt.dll-Help.xml"));
            foreach (var about in Directory.GetFiles(helpDirectory, "about_*.md"))
            {
                var name = Path.GetFileNameWithoutExtension(about) + ".help.txt";
                File.WriteAllText(Path.Combine(outputDirectory, name), AboutTopicWriter.Convert(File.ReadAllText(about)));
            }

            Console.WriteLine($"Help: {commands.Count} cmdlet(s) compiled to {outputDirectory}");
            return 0;
        case ["new", var manifest, var helpDirectory]:
            foreach (var path in SkeletonWriter.WriteMissing(manifest, helpDirectory))
            {
                Console.WriteLine($"Wrote {path}");
            }

            return 0;
        case ["package", var moduleDirectory, var outputDirectory]:
            Console.WriteLine($"Package: {ModulePackager.Pack(moduleDirectory, outputDirectory)}");
            return 0;
        default:
            Console.Error.WriteLine("Usage: iothubmqtt-helpbuilder build <help dir> <output dir> | new <module psd1> <help dir> | package <module dir> <output dir>");
            return 64;
    }
}
catch (HelpFormatException ex)
{
    Console.Error.WriteLine($"error: {ex.Message}");
    return 1;
}
