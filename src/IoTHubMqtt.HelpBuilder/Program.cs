using IoTHubMqtt.HelpBuilder;

// iothubmqtt-helpbuilder build <help dir> <output dir>   markdown -> en-US/IoTHubMqtt.dll-Help.xml + about_*.help.txt
// iothubmqtt-helpbuilder new <module psd1> <help dir>     markdown skeletons for exported cmdlets that have none
// iothubmqtt-helpbuilder updatable <module dir> <output dir> HelpInfo.xml + HelpContent.zip for Update-Help
try
{
    switch (args)
    {
        case ["build", var helpDirectory, var outputDirectory]:
            Directory.CreateDirectory(outputDirectory);
            var commands = Directory.GetFiles(helpDirectory, "*-*.md").Order(StringComparer.Ordinal).Select(MarkdownReader.Read).ToList();
            var manifestPath = Path.Combine(helpDirectory, "..", "..", "IoTHubMqtt.psd1");
            if (File.Exists(manifestPath))
            {
                var projectUri = OnlineHelp.ProjectUri(manifestPath);
                commands.Where(c => c.OnlineVersion is null).ToList().ForEach(c => c.OnlineVersion = OnlineHelp.PageFor(projectUri, c.Name));
            }

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
        case ["updatable", var moduleDirectory, var outputDirectory]:
            foreach (var path in UpdatableHelp.Write(moduleDirectory, outputDirectory))
            {
                Console.WriteLine($"Updatable help: {path}");
            }

            return 0;
        default:
            Console.Error.WriteLine("Usage: iothubmqtt-helpbuilder build <help dir> <output dir> | new <module psd1> <help dir> | updatable <module dir> <output dir>");
            return 64;
    }
}
catch (HelpFormatException ex)
{
    Console.Error.WriteLine($"error: {ex.Message}");
    return 1;
}
